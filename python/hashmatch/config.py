"""Every default hashmatch applies, defined once: match thresholds, quality gates, resource bounds.

Bounds the native core enforces are read from the core, so Python and C++ can never disagree.
A bank or a call may override a threshold; these are the field's values.
"""

from __future__ import annotations

import os

from . import _core

# ----- PDQ (Meta's image hash) ------------------------------------------------------------
#: A PDQ pair at Hamming distance <= 31 of 256 is a match.
PDQ_MAX_DISTANCE = 31
#: PDQ hashes of quality below 50 (flat, featureless images) are not matched.
PDQ_MIN_QUALITY = 50

# ----- vPDQ (one PDQ per sampled frame) ---------------------------------------------------
#: Seconds between hashed frames when hashmatch hashes a video for a database: one frame a second.
VPDQ_SECONDS_PER_HASH = 1.0
VPDQ_MAX_DISTANCE = PDQ_MAX_DISTANCE
VPDQ_MIN_QUALITY = PDQ_MIN_QUALITY
#: A video matches when >= 80% of the query's unique good frames match (and >= 0% of the stored ones).
VPDQ_QUERY_MATCH_PERCENT = 80.0
VPDQ_COMPARED_MATCH_PERCENT = 0.0

# ----- TMK+PDQF ---------------------------------------------------------------------------
TMK_FRAMES_PER_SECOND = 15
TMK_PERIODS = (2731, 4391, 9767, 14653)
TMK_FOURIER_COEFFICIENTS = 32
TMK_KERNEL_BETA = 32.0
TMK_FEATURE_DIMENSION = 256
#: Level-1 (pure-average cosine) and level-2 (kernel score) thresholds, and the near-exact one.
TMK_LEVEL1_THRESHOLD = 0.7
TMK_LEVEL2_THRESHOLD = 0.7
TMK_NEAR_EXACT_THRESHOLD = 0.9
#: Shape bounds of any TMK value (from a file or computed), as the core enforces them.
TMK_MAX_PERIODS = int(_core.TMK_MAX_PERIODS)
TMK_MAX_COEFFICIENTS = int(_core.TMK_MAX_COEFFICIENTS)
TMK_MAX_DIMENSION = int(_core.TMK_MAX_DIMENSION)
TMK_MAX_PERIOD = int(_core.TMK_MAX_PERIOD)
TMK_MAX_LEVEL2_WORK = int(_core.TMK_MAX_LEVEL2_WORK)
#: Largest .tmk file read by default: the reference's shape is 262 KiB.
TMK_MAX_BYTES = 64 << 20

# ----- borders (letterbox, pillarbox, frames) ---------------------------------------------
BORDER_TOLERANCE = int(_core.BORDER_TOLERANCE)
BORDER_MAX_OUTLIERS = float(_core.BORDER_MAX_OUTLIERS)
BORDER_MIN_KEEP = float(_core.BORDER_MIN_KEEP)

# ----- decoding bounds ----------------------------------------------------------------------
#: Largest image decoded by default: above every camera, below Pillow's own bomb refusal (~179M).
MAX_PIXELS = 150_000_000
#: fast_decode asks JPEG for a reduced DCT scale only when the shorter side is >= twice this.
FAST_DECODE_MIN_SIDE = 512
MAX_FRAME_PIXELS = 8192 * 8192
MAX_DURATION = 6 * 3600.0
#: Most vPDQ frames hashed from one video.
MAX_HASHED_FRAMES = 200_000
#: Animated images (GIF, APNG, WebP): most frames, and most pixels decoded over all frames
#: (canvas x frames; each canvas is also held to MAX_PIXELS). Above either, matching and adding
#: refuse the file from its header, before decoding a frame.
MAX_ANIMATION_FRAMES = 5_000
MAX_ANIMATION_PIXELS = 1 << 30
#: vPDQ of an animation: every frame when it has at most this many (each may be its own picture),
#: else the frame on screen at each whole second of its own timeline, as vPDQ samples video.
ANIMATION_EVERY_FRAME_MAX = 100
#: A frame delay of at most 10 ms (or none) is shown for 100 ms, as browsers show GIFs.
ANIMATION_MIN_DELAY_MS = 10
ANIMATION_DEFAULT_DELAY_MS = 100
#: TMK fills 15 slots a second: the bound that matches MAX_DURATION.
MAX_TMK_FRAMES = int(TMK_FRAMES_PER_SECOND * MAX_DURATION) + 1

# ----- hash lists and indexes ---------------------------------------------------------------
#: Longest line of an imported hash list (a 6-hour vPDQ signal string is ~2 MiB).
MAX_LINE_BYTES = 16 << 20
#: Most (query, neighbour) slots one k-NN search returns.
MAX_KNN_RESULTS = int(_core.MAX_KNN_RESULTS)
HAMMING_MIH_MIN_ROWS = int(_core.HAMMING_MIH_MIN_ROWS)
HAMMING_TAIL_MIN_ROWS = int(_core.HAMMING_TAIL_MIN_ROWS)
#: A saved (segment) index merges its in-memory delta of adds into a new segment once the
#: delta holds this many codes, or 1/HAMMING_MERGE_FRACTION of the segments' rows if more.
HAMMING_MERGE_MIN_ROWS = 65536
HAMMING_MERGE_FRACTION = 64
#: At most this many segments in a saved index; a merge past it (or past 1/8 dead rows)
#: rewrites every live row as one segment.
HAMMING_MAX_SEGMENTS = 4

# ----- hashmatch serve ------------------------------------------------------------------------
#: Where `hashmatch serve` listens (loopback: put a reverse proxy in front for anything else).
SERVE_HOST = "127.0.0.1"
SERVE_PORT = 5100
#: Largest request body (an upload, a JSON batch): a long video fits, a disk-filling one does not.
SERVE_MAX_BODY_BYTES = 256 << 20
#: Largest JSON body (batch lookups, curation): far below the upload limit.
SERVE_MAX_JSON_BYTES = 8 << 20
#: Deepest JSON nesting accepted (the API's own bodies are 3 levels deep).
SERVE_MAX_JSON_DEPTH = 20
#: Most request header fields, and their total bytes (431 above either).
SERVE_MAX_HEADERS = 100
SERVE_MAX_HEADER_BYTES = 32 << 10
#: Most hashes or files in one batch lookup.
SERVE_MAX_BATCH = 1000
#: Seconds a request may take before it is answered 504 (a video upload is hashed within it).
SERVE_REQUEST_TIMEOUT = 120.0
#: Seconds between each worker's look at the change log (new hashes matchable within this).
SERVE_REFRESH_SECONDS = 0.2
#: Seconds a worker trusts a token it verified (a revoked token stops working within this).
SERVE_TOKEN_CACHE_SECONDS = 2.0
#: Hashing by URL: largest download, seconds to connect and for the whole download, redirects followed.
FETCH_MAX_BYTES = 256 << 20
FETCH_CONNECT_TIMEOUT = 5.0
FETCH_TIMEOUT = 30.0
FETCH_MAX_REDIRECTS = 5

#: The environment variable naming the database hashmatch.match() opens, and its fallback.
DB_ENV = "HASHMATCH_DB"
DEFAULT_DB = "hashmatch.db"


def default_threads() -> int:
    """Threads (and worker processes) used when a call does not say: one per CPU this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1

# ----- live exchanges (hashmatch.exchanges) -------------------------------------------------
#: Seconds one HTTP request to an exchange may take before it is retried.
EXCHANGE_TIMEOUT = 60.0
#: Attempts per page (or feedback send) before a fetch stops with the page's checkpoint kept.
EXCHANGE_ATTEMPTS = 8
#: First wait between attempts, doubled each time up to EXCHANGE_MAX_BACKOFF (a 429's
#: Retry-After wins when it says longer, up to EXCHANGE_MAX_RETRY_AFTER).
EXCHANGE_BACKOFF = 0.5
EXCHANGE_MAX_BACKOFF = 60.0
EXCHANGE_MAX_RETRY_AFTER = 600.0
#: Records per StopNCII FetchHashes page and per ThreatExchange threat_updates page.
STOPNCII_PAGE_SIZE = 800
THREATEXCHANGE_PAGE_SIZE = 500
#: Seconds between passes of the service's background fetcher.
EXCHANGE_FETCH_INTERVAL = 300.0
#: A file naming one exchange's credentials may be set per exchange as this variable with the
#: exchange's name (upper case, other characters as _) in the middle: HASHMATCH_<NAME>_CREDENTIALS.
EXCHANGE_CREDENTIALS_ENV = "HASHMATCH_{NAME}_CREDENTIALS"
#: Most records one fetch commits in one transaction when several pages have arrived already
#: (whole pages only, with the last one's checkpoint).
EXCHANGE_GROUP_ENTRIES = 10_000
