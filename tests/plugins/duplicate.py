"""A catnet plugin that registers a generator, then one whose name is taken."""

from catnet import extend


def same(ctx, dom, args):
    return dom


extend.generator("first_of_two", same, doc="registered, then removed again when the next one fails")
extend.generator("relu", same, doc="`relu` is a built-in generator")
