"""The local stand-in for Dojo used by the demo and the tests."""
