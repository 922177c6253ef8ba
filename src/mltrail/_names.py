"""Readable random run names ("brave-owl-417"), as MLflow gives runs without a name."""

import random

_ADJECTIVES = (
    "able", "agile", "amber", "bold", "brave", "bright", "calm", "clever", "crisp", "daring", "eager", "fair",
    "fast", "gentle", "glad", "grand", "happy", "keen", "kind", "lively", "lucky", "merry", "mighty", "neat",
    "nimble", "noble", "proud", "quick", "quiet", "rare", "sharp", "shy", "sleek", "smart", "steady", "sunny",
    "swift", "tidy", "vast", "warm", "wise", "witty", "zesty",
)
_NOUNS = (
    "ant", "bat", "bear", "bee", "cat", "colt", "crab", "crow", "deer", "dove", "eel", "elk", "finch", "fox",
    "frog", "gnu", "goat", "hare", "hawk", "ibis", "jay", "koala", "lark", "lion", "lynx", "mole", "moth",
    "newt", "owl", "panda", "puma", "ram", "seal", "shrew", "slug", "snail", "swan", "toad", "trout", "wasp",
    "whale", "wolf", "wren", "yak",
)


def random_run_name() -> str:
    return f"{random.choice(_ADJECTIVES)}-{random.choice(_NOUNS)}-{random.randint(100, 999)}"
