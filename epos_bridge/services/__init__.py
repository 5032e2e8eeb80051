"""Use cases over the ports: serve a request, publish what happened."""
