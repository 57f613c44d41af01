"""Helpers the behaviour tests share: paired controls and repeated inner-test shapes."""
