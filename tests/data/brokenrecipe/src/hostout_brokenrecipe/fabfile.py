def hello():
    """never reached"""
