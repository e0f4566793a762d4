"""The book's chapter-7 modules that its scripts import from their own folder."""
