"""taxonomist: put text into a label set, from zero labeled examples up."""

__version__ = "0.2.0"
