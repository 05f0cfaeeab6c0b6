"""The officer console (server-rendered pages) and the application that serves it with the API."""
