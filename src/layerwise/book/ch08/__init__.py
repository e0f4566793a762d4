"""The book's chapter-8 modules that its scripts import from their own folder."""
