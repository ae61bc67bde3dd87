"""The command line: parse flags, call the library, print. The only package that prints or exits."""
