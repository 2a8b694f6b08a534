//! A process pool like Python's `multiprocessing.Pool` (see issue: pool and demos).
