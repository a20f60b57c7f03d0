"""Animals-10 folder names (Italian) and their English labels.

Written out by hand: the dataset's own ``translate.py`` lacks ``ragno`` and maps
``cavallo`` twice, so it must not be copied.
"""

ANIMALS10: dict[str, str] = {
    "cane": "dog",
    "cavallo": "horse",
    "elefante": "elephant",
    "farfalla": "butterfly",
    "gallina": "chicken",
    "gatto": "cat",
    "mucca": "cow",
    "pecora": "sheep",
    "ragno": "spider",
    "scoiattolo": "squirrel",
}


def english_labels(folders: list[str]) -> list[str]:
    """Folder names -> labels: Animals-10's Italian names are translated, others kept."""
    if set(folders) <= set(ANIMALS10):
        return [ANIMALS10[f] for f in folders]
    return list(folders)
