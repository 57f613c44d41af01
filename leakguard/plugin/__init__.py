"""The pytest glue: every hook, the options, markers, the fixture handle and the summary."""
