"""Hash-list files in and out of a database: JSON Lines, CSV, ``format value`` lists, vPDQ and .tmk files.

The word "exchange" is kept for live exchanges (NCMEC, StopNCII, ThreatExchange); these are files.
"""

from .files import (DEFAULT_MAX_LINE_BYTES, export, export_csv, export_files, export_jsonl, export_list,
                    read_bytes, read_csv, read_file, read_jsonl, read_list, read_stream, read_vpdq_file,
                    record_from_json, record_to_json)

__all__ = ["DEFAULT_MAX_LINE_BYTES", "export", "export_csv", "export_files", "export_jsonl", "export_list",
           "read_bytes", "read_csv", "read_file", "read_jsonl", "read_list", "read_stream", "read_vpdq_file",
           "record_from_json", "record_to_json"]
