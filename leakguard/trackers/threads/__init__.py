"""The ``threads`` tracker: live threads, and the known owners that can stop them."""
