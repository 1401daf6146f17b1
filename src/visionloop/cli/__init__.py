"""Command-line interface (Typer): parse, call the library, print."""
