# Running __main__.py would start the command line during doctest collection.
collect_ignore = ["destructors/__main__.py"]
