"""The Textual app. Depends on explorer.session and explorer.engine, never the other way."""
