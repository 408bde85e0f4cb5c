"""Hash-list files in and out of a database: JSON Lines, CSV, ``format value`` lists, vPDQ and .tmk files.

Every reader parses and validates the whole file before anything is written (an import
applies whole or not at all), and its errors name the file, the line and the field. Every
writer streams, so a database of millions of entries exports in bounded memory. The word
"exchange" is kept for live exchanges (NCMEC, StopNCII, ThreatExchange); these are files.
"""

from .csv_lists import export_csv, read_csv
from .export import export
from .jsonl import export_jsonl, read_jsonl, record_from_json, record_to_json
from .per_entry import export_files, read_vpdq_file
from .plain import export_list, read_list
from .reading import DEFAULT_MAX_LINE_BYTES, read_bytes, read_file, read_stream

__all__ = ["DEFAULT_MAX_LINE_BYTES", "export", "export_csv", "export_files", "export_jsonl", "export_list",
           "read_bytes", "read_csv", "read_file", "read_jsonl", "read_list", "read_stream", "read_vpdq_file",
           "record_from_json", "record_to_json"]
