"""Lambda entry points: parse the event, call domain and adapters, shape the answer."""
