"""The book's chapter-5 modules that its scripts import from their own folder."""
