"""The feedback store: one SQLite file with the documents a project has seen, the suggestions it served (with the
model's checksum) and what reviewers said about them. Nothing a reviewer gave is lost: an undo is a row of its own
that withdraws an earlier one, so the history stays whole and `current_verdicts` resolves it.

Durability: WAL journal with `synchronous=FULL`. In WAL mode a commit appends to the -wal file; FULL fsyncs that
file before the commit returns, so a write that was acknowledged survives `kill -9` of the process (which only
needs the bytes handed to the OS, as NORMAL would already do) and also a power cut or kernel crash (which NORMAL
in WAL mode does not promise). One fsync per commit is cheap at the pace people review.

Concurrency: one connection per thread (sqlite3 connections must not be shared mid-transaction); WAL lets readers
run beside the one writer; writers take the lock up front (`BEGIN IMMEDIATE`) and wait up to `busy_timeout` for
each other instead of failing; transactions are short (one call, one transaction).
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from ..errors import InputError, NotFoundError

SCHEMA_VERSION = 1
APPLICATION_ID = 0x54584E46  # "TXNF": marks a SQLite file as a taxonomist feedback store
ACCEPT, REJECT, ADD = "accept", "reject", "add"
VERDICTS = (ACCEPT, REJECT, ADD)
WITHDRAW = "withdraw"  # the kind of the row an undo writes
BUSY_TIMEOUT_MS = 10_000

_SCHEMA = f"""
CREATE TABLE documents (
    id INTEGER PRIMARY KEY,
    project TEXT NOT NULL,
    ref TEXT,                         -- the caller's own id for it (a file name, Annif's document_id), if any
    text TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    UNIQUE (project, sha256)
);
CREATE TABLE servings (               -- one suggest answer for one document
    id INTEGER PRIMARY KEY,
    document INTEGER NOT NULL REFERENCES documents(id),
    model_checksum TEXT,
    served_at TEXT NOT NULL
);
CREATE INDEX servings_document ON servings(document, id);
CREATE TABLE suggestions (
    serving INTEGER NOT NULL REFERENCES servings(id),
    rank INTEGER NOT NULL CHECK (rank >= 1),
    label_id TEXT NOT NULL,
    score REAL NOT NULL,
    probability REAL,
    PRIMARY KEY (serving, rank)
);
CREATE TABLE feedback (
    id INTEGER PRIMARY KEY,
    document INTEGER NOT NULL REFERENCES documents(id),
    label_id TEXT NOT NULL,
    verdict TEXT NOT NULL CHECK (verdict IN ({", ".join(f"'{v}'" for v in (*VERDICTS, WITHDRAW))})),
    who TEXT NOT NULL,
    at TEXT NOT NULL,
    note TEXT,
    withdraws INTEGER UNIQUE REFERENCES feedback(id),  -- set on withdraw rows only, one undo per verdict
    CHECK ((verdict = '{WITHDRAW}') = (withdraws IS NOT NULL))
);
CREATE INDEX feedback_document ON feedback(document, label_id, id);
"""


@dataclass(frozen=True)
class Document:
    id: int
    project: str
    ref: str | None
    text: str
    sha256: str
    first_seen: str


@dataclass(frozen=True)
class StoredSuggestion:
    label_id: str
    score: float
    probability: float | None
    rank: int


@dataclass(frozen=True)
class Feedback:
    """One row of a document's history; `withdrawn_by` is the id of the undo that withdrew it, if any."""

    id: int
    document: int
    label_id: str
    verdict: str
    who: str
    at: str
    note: str | None = None
    withdraws: int | None = None
    withdrawn_by: int | None = None


@dataclass(frozen=True)
class Verdict:
    """What stands for a document × label: the latest verdict not withdrawn."""

    document: int
    label_id: str
    verdict: str
    feedback_id: int
    who: str
    at: str


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # sorts as text


class FeedbackStore:
    """The store at `path`; `create` makes a new one where no file exists (a server), else a missing file is an
    error (`train --feedback`). A file that is not a store, or a store of a newer schema, is refused."""

    def __init__(self, path: str | Path, *, create: bool = True) -> None:
        self.path = Path(path)
        if not self.path.exists() and not create:
            raise InputError("no feedback store at this path", where=str(self.path),
                             fix="give the --store file the server wrote (taxonomist serve --store FILE)")
        if self.path.is_dir():
            raise InputError("the feedback store is a folder, not a file", where=str(self.path),
                             fix="give the path of the SQLite file")
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._guard = threading.Lock()
        self._check_schema()

    # ------------------------------------------------------------------ connections
    def _connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._connect()
            self._local.connection = connection
            with self._guard:
                self._connections.append(connection)
        return connection

    def _connect(self) -> sqlite3.Connection:
        try:
            # autocommit (isolation_level=None): transactions are begun and committed here, explicitly
            connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                         timeout=BUSY_TIMEOUT_MS / 1000)
            connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        except sqlite3.DatabaseError as error:
            raise self._not_a_store(error) from None
        if mode.lower() != "wal":
            connection.close()
            raise InputError(f"the feedback store cannot use a write-ahead log here (journal mode {mode!r})",
                             where=str(self.path), fix="put the store on a local file system")
        connection.execute("PRAGMA synchronous = FULL")
        connection.execute("PRAGMA foreign_keys = ON")
        return connection

    def _not_a_store(self, error: Exception) -> InputError:
        if isinstance(error, sqlite3.OperationalError) and any(
                what in str(error) for what in ("unable to open", "readonly", "read-only")):
            return InputError(f"the feedback store cannot be opened for writing ({error})", where=str(self.path),
                              fix="give a path in a folder that exists and that you may write to (--store FILE)")
        return InputError(f"not a taxonomist feedback store ({error})", where=str(self.path),
                          fix="give the SQLite file that `taxonomist serve --store` wrote, or a new path")

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction; the lock is taken up front so that two writers never deadlock."""
        connection = self._connection()
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield connection
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    def _check_schema(self) -> None:
        """Create the schema in a new (empty) file; refuse a file of another kind or a newer version. Checked on a
        plain connection first, so that a file which is not ours is never switched to WAL."""
        try:
            probe = sqlite3.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
        except sqlite3.Error as error:
            raise self._not_a_store(error) from None
        try:
            application, version, tables = self._identity(probe)
            if application == version == tables == 0:
                probe.execute("PRAGMA journal_mode = WAL")
                probe.execute("BEGIN IMMEDIATE")
                if self._identity(probe) == (0, 0, 0):  # no other process made it meanwhile
                    for statement in filter(str.strip, _SCHEMA.split(";")):  # no ";" inside a statement
                        probe.execute(statement)
                    probe.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                    probe.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                probe.execute("COMMIT")
                application, version, _ = self._identity(probe)
        except sqlite3.DatabaseError as error:
            raise self._not_a_store(error) from None
        finally:
            probe.close()
        if application != APPLICATION_ID:
            raise InputError("this SQLite file is not a taxonomist feedback store", where=str(self.path),
                             fix="give the file that `taxonomist serve --store` wrote, or a path for a new store")
        if version > SCHEMA_VERSION:
            raise InputError(f"the feedback store has schema version {version}, newer than this taxonomist reads "
                             f"({SCHEMA_VERSION})", where=str(self.path),
                             fix="use the taxonomist version that wrote it, or upgrade taxonomist")
        if version < 1:
            raise InputError(f"the feedback store has an unknown schema version {version}", where=str(self.path),
                             fix="give the file that `taxonomist serve --store` wrote")

    @staticmethod
    def _identity(db: sqlite3.Connection) -> tuple[int, int, int]:
        """(application id, schema version, number of schema objects)."""
        return (db.execute("PRAGMA application_id").fetchone()[0], db.execute("PRAGMA user_version").fetchone()[0],
                db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0])

    def close(self) -> None:
        """Close every thread's connection (the last one to close checkpoints the log into the file)."""
        with self._guard:
            for connection in self._connections:
                connection.close()
            self._connections.clear()
        self._local = threading.local()

    def __enter__(self) -> "FeedbackStore":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # ------------------------------------------------------------------ writing
    def record_document(self, project: str, text: str, *, ref: str | None = None) -> int:
        """The document's id in `project`, recorded on first sight (the same text is the same document; a `ref`
        given later fills one that was missing)."""
        with self._write() as db:
            return self._document(db, project, text, ref)

    @staticmethod
    def _document(db: sqlite3.Connection, project: str, text: str, ref: str | None) -> int:
        digest = text_sha256(text)
        row = db.execute("SELECT id, ref FROM documents WHERE project = ? AND sha256 = ?",
                         (project, digest)).fetchone()
        if row is None:
            return db.execute("INSERT INTO documents (project, ref, text, sha256, first_seen) "
                              "VALUES (?, ?, ?, ?, ?)", (project, ref, text, digest, _now())).lastrowid
        if ref is not None and row[1] is None:
            db.execute("UPDATE documents SET ref = ? WHERE id = ?", (ref, row[0]))
        return row[0]

    def record_served(self, project: str,
                      served: Sequence[tuple[str, str | None, Sequence[tuple[str, float, float | None]]]], *,
                      model_checksum: str | None) -> list[int]:
        """What a server answered for several documents, each (text, ref, suggestions as in record_suggestions),
        in one transaction: one fsync per request rather than two per document. Returns the documents' ids."""
        with self._write() as db:
            ids = []
            for text, ref, suggestions in served:
                ids.append(self._document(db, project, text, ref))
                self._serving(db, ids[-1], suggestions, model_checksum)
            return ids

    def record_suggestions(self, document: int, suggestions: Sequence[tuple[str, float, float | None]], *,
                           model_checksum: str | None) -> int:
        """One answer served for `document`: (label id, score, probability or None), best first, and the
        checksum of the model that gave it. Returns the serving's id."""
        with self._write() as db:
            self._require_document(db, document)
            return self._serving(db, document, suggestions, model_checksum)

    @staticmethod
    def _serving(db: sqlite3.Connection, document: int, suggestions: Sequence[tuple[str, float, float | None]],
                 model_checksum: str | None) -> int:
        serving = db.execute("INSERT INTO servings (document, model_checksum, served_at) VALUES (?, ?, ?)",
                             (document, model_checksum, _now())).lastrowid
        db.executemany("INSERT INTO suggestions (serving, rank, label_id, score, probability) "
                       "VALUES (?, ?, ?, ?, ?)",
                       [(serving, rank, label_id, float(score), None if p is None else float(p))
                        for rank, (label_id, score, p) in enumerate(suggestions, start=1)])
        return serving

    def add_feedback(self, document: int, label_id: str, verdict: str, *, who: str,
                     note: str | None = None) -> int:
        """A reviewer's verdict (accept, reject or add) on one label of a document; returns its id, for undo."""
        if verdict not in VERDICTS:
            raise InputError(f"unknown verdict {verdict!r}", fix=f"use one of {', '.join(VERDICTS)}")
        if not label_id:
            raise InputError("feedback needs a label id", fix="name the label the verdict is about")
        with self._write() as db:
            self._require_document(db, document)
            return self._insert(db, document, label_id, verdict, who, note, None)

    def add_examples(self, project: str, examples: Sequence[tuple[str, Sequence[str]]], *, who: str,
                     note: str | None = None) -> list[int]:
        """Labelled documents given whole (Annif's learn): each (text, label ids) recorded with an `add` verdict
        per label, in one transaction. Returns the feedback rows' ids."""
        if not who:
            raise InputError("feedback needs to say who gave it", fix="pass who (a user name or client id)")
        with self._write() as db:
            rows = []
            for text, label_ids in examples:
                document = self._document(db, project, text, None)
                rows += [self._insert(db, document, label_id, ADD, who, note, None) for label_id in label_ids]
            return rows

    def undo(self, feedback_id: int, *, who: str, note: str | None = None) -> int:
        """Withdraw a verdict: a new row that points at it (the verdict stays in the history). What stood before
        it, if anything, stands again. Returns the undo's id."""
        with self._write() as db:
            row = db.execute("SELECT document, label_id, verdict, (SELECT id FROM feedback w WHERE w.withdraws = "
                             "f.id) FROM feedback f WHERE id = ?", (feedback_id,)).fetchone()
            if row is None or row[2] == WITHDRAW:
                raise NotFoundError(f"no verdict {feedback_id} to undo", fix="give the id add_feedback returned")
            if row[3] is not None:
                raise InputError(f"verdict {feedback_id} was already withdrawn (by {row[3]})",
                                 fix="give the verdict again to restore it")
            return self._insert(db, row[0], row[1], WITHDRAW, who, note, feedback_id)

    def _insert(self, db: sqlite3.Connection, document: int, label_id: str, verdict: str, who: str,
                note: str | None, withdraws: int | None) -> int:
        if not who:
            raise InputError("feedback needs to say who gave it", fix="pass who (a user name or client id)")
        return db.execute("INSERT INTO feedback (document, label_id, verdict, who, at, note, withdraws) "
                          "VALUES (?, ?, ?, ?, ?, ?, ?)",
                          (document, label_id, verdict, who, _now(), note, withdraws)).lastrowid

    @staticmethod
    def _require_document(db: sqlite3.Connection, document: int) -> None:
        if db.execute("SELECT 1 FROM documents WHERE id = ?", (document,)).fetchone() is None:
            raise NotFoundError(f"no document {document} in the feedback store",
                                fix="record the document first (record_document returns its id)")

    # ------------------------------------------------------------------ reading
    def document(self, document: int) -> Document:
        row = self._connection().execute("SELECT id, project, ref, text, sha256, first_seen FROM documents "
                                         "WHERE id = ?", (document,)).fetchone()
        if row is None:
            raise NotFoundError(f"no document {document} in the feedback store", fix="give a recorded document id")
        return Document(*row)

    def documents(self, project: str, ids: Sequence[int] | None = None) -> list[Document]:
        """The project's documents in the order they were first seen (or only those of `ids`)."""
        columns = "SELECT id, project, ref, text, sha256, first_seen FROM documents WHERE project = ?"
        db = self._connection()
        if ids is None:
            return [Document(*row) for row in db.execute(f"{columns} ORDER BY id", (project,))]
        ids = sorted(set(ids))
        rows = []
        for start in range(0, len(ids), 500):  # under SQLite's limit on bound parameters
            chunk = ids[start:start + 500]
            rows += db.execute(f"{columns} AND id IN ({', '.join('?' * len(chunk))})", (project, *chunk)).fetchall()
        return [Document(*row) for row in sorted(rows)]

    def document_ids(self, project: str) -> list[int]:
        """The project's document ids in the order they were first seen, without reading their texts."""
        return [row[0] for row in self._connection().execute(
            "SELECT id FROM documents WHERE project = ? ORDER BY id", (project,))]

    def hashes(self, project: str) -> list[tuple[int, str, str | None]]:
        """(id, text sha256, ref) of each of the project's documents, without reading their texts."""
        return self._connection().execute("SELECT id, sha256, ref FROM documents WHERE project = ? ORDER BY id",
                                          (project,)).fetchall()

    def projects(self) -> list[str]:
        return [row[0] for row in self._connection().execute("SELECT DISTINCT project FROM documents ORDER BY 1")]

    def latest_suggestions(self, project: str) -> dict[int, tuple[str | None, list[StoredSuggestion]]]:
        """Per document of `project`: the checksum of the model that served it last, and that answer."""
        rows = self._connection().execute(
            "SELECT s.document, s.model_checksum, g.label_id, g.score, g.probability, g.rank "
            "FROM servings s JOIN documents d ON d.id = s.document JOIN suggestions g ON g.serving = s.id "
            "WHERE d.project = ? AND s.id = (SELECT max(id) FROM servings WHERE document = s.document) "
            "ORDER BY s.document, g.rank", (project,)).fetchall()
        out: dict[int, tuple[str | None, list[StoredSuggestion]]] = {}
        for document, checksum, *suggestion in rows:
            out.setdefault(document, (checksum, []))[1].append(StoredSuggestion(*suggestion))
        return out

    def feedback_entry(self, feedback_id: int) -> Feedback:
        """One feedback row by id (a verdict or an undo)."""
        row = self._connection().execute(
            "SELECT f.id, f.document, f.label_id, f.verdict, f.who, f.at, f.note, f.withdraws, w.id "
            "FROM feedback f LEFT JOIN feedback w ON w.withdraws = f.id WHERE f.id = ?", (feedback_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no feedback {feedback_id} in the feedback store", fix="give an id feedback returned")
        return Feedback(*row)

    def feedback_for(self, document: int) -> list[Feedback]:
        """The document's whole history, oldest first, undos included."""
        rows = self._connection().execute(
            "SELECT f.id, f.document, f.label_id, f.verdict, f.who, f.at, f.note, f.withdraws, w.id "
            "FROM feedback f LEFT JOIN feedback w ON w.withdraws = f.id WHERE f.document = ? ORDER BY f.id",
            (document,)).fetchall()
        return [Feedback(*row) for row in rows]

    def current_verdicts(self, project: str) -> list[Verdict]:
        """Per document × label of `project`, the latest verdict that no undo withdrew, by document then label."""
        rows = self._connection().execute(
            "SELECT f.document, f.label_id, f.verdict, f.id, f.who, f.at FROM feedback f "
            "JOIN documents d ON d.id = f.document "
            "WHERE d.project = ? AND f.verdict != ? AND f.id = ("
            "  SELECT max(g.id) FROM feedback g WHERE g.document = f.document AND g.label_id = f.label_id "
            "  AND g.verdict != ? AND NOT EXISTS (SELECT 1 FROM feedback w WHERE w.withdraws = g.id)) "
            "ORDER BY f.document, f.label_id", (project, WITHDRAW, WITHDRAW)).fetchall()
        return [Verdict(*row) for row in rows]

    def reviewed_documents(self, project: str) -> set[int]:
        """Documents of `project` with at least one verdict standing."""
        return {verdict.document for verdict in self.current_verdicts(project)}

    def stats(self, project: str) -> dict[str, int]:
        """Review progress: documents seen and reviewed, the standing verdicts by kind, and every feedback row
        (undos included) ever given."""
        db = self._connection()
        total = db.execute("SELECT count(*) FROM documents WHERE project = ?", (project,)).fetchone()[0]
        rows = db.execute("SELECT count(*) FROM feedback f JOIN documents d ON d.id = f.document "
                          "WHERE d.project = ?", (project,)).fetchone()[0]
        verdicts = self.current_verdicts(project)
        counts = {kind: sum(v.verdict == kind for v in verdicts) for kind in VERDICTS}
        return {"documents": total, "reviewed": len({v.document for v in verdicts}),
                "feedback_rows": rows, "accepted": counts[ACCEPT], "rejected": counts[REJECT],
                "added": counts[ADD]}
