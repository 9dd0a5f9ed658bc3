"""The store an ingest writes to, checked to hold ids made with this machine's key.

Subject ids are keyed hashes of the labels (:mod:`cxlab.pseudo`): ids made with two keys
never join. A store records the check of the key its first ingest used
(:meth:`cxlab.store.Store.claim_key_check`); every ingest command compares its own key's
check with it first, so recordings ingested on one machine and surveys on another machine
with its own key (a laptop that made itself a new key file) are refused, not stored as
different subjects.
"""

from __future__ import annotations

import os

from cxlab._check import ConfigError, message
from cxlab.pseudo import key_check
from cxlab.store import Store


def keyed_store(store: Store | str | os.PathLike[str], /) -> Store:
    """``store`` (opened if a path or URL), its recorded key check claimed for this
    machine's key if it has none.

    Raises
    ------
    ConfigError
        The store's ids were made with another key; names both checks, CXLAB_KEY and the
        fix. Nothing is read or written then.
    """
    st = store if isinstance(store, Store) else Store(store)
    mine = key_check()
    theirs = st.claim_key_check(mine)
    if theirs != mine:
        raise ConfigError(
            message(
                f"the store {st.location} holds subject ids made with another "
                f"pseudonymisation key (key check {theirs}; this machine's key: {mine}); "
                "what is ingested here would get ids that join none of them",
                field="CXLAB_KEY",
                fix="set CXLAB_KEY to the key the store was made with (the key file "
                "~/.config/cxlab/key of the machine that made it), or ingest into a new "
                "store",
            )
        )
    return st
