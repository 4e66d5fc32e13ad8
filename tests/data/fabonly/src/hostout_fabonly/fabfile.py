def fabonly_hello():
    """a command of a plugin that has no recipe"""
    return "hello"
