"""Array producers the tests hand to trainkern besides NumPy arrays."""


class DLPackOnly:
    """Shows an ndarray's memory only through the DLPack protocol."""

    def __init__(self, a):
        self._a = a

    def __dlpack__(self, **kw):
        return self._a.__dlpack__(**kw)

    def __dlpack_device__(self):
        return self._a.__dlpack_device__()
