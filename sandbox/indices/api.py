"""Routes of this API area."""

ROUTES: list = []
