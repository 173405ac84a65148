"""vidpipe: one pipeline for a course platform's videos on Mux."""

__version__ = "0.1.0"
