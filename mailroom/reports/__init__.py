"""Reports: a period's statistics (``data``), described as a document (``document``,
``cases``) that every format renders (``formats``, ``charts``)."""
