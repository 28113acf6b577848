"""zoo's built-in backbone plugins, installed as ``zoo.plugins``.

Each module is a plugin exactly like a third party's: it implements the
``register_backbones`` hook. Their metadata lives in registry.yaml; their code here.
"""
