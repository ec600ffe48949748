"""Plain functions over the models. No ``flask.request`` here: the tenant is an argument."""
