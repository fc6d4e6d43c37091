"""CSV import of an account's users: every row is checked, then all of it applies or none of it.

The file (``email,name,roles``, roles joined by ``;``, UTF-8 with or without a BOM) is read as a
stream, line by line, in chunks of ``CHUNK_ROWS``: one lookup of the chunk's emails, one bulk
INSERT of its new users, one bulk UPDATE of its changed ones. Memory holds one chunk, the emails
seen so far (to find duplicates and the users missing from the file) and a bounded sample of rows
to show; never the whole file.

All or nothing: writes go to the caller's transaction and stop at the first refused row; the
report then says ``applied=False`` and the caller rolls back. Importing the same file twice
changes nothing the second time: a row equal to the user it names is ``unchanged``.

The audit trail: one ``user.import`` event per import (who, when, the counts, the file's
SHA-256); one ``user.update`` event per existing user whose name or roles changed (with before
and after), and one ``user.deactivate`` event per user deactivated as missing from the file.
New users get no event each: the import's event covers them (they are created in its transaction),
which keeps a 100,000-row import within 1.5 times the cost of a plain bulk insert (bench/csv_import.py).
"""

from __future__ import annotations

import codecs
import csv
import functools
import hashlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import IO, Any, NamedTuple, TypeVar, cast

from sqlalchemy import ColumnElement, Dialect, String, Table, any_, bindparam, literal, literal_column, select, true
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError
from sqlalchemy.types import TypeEngine

from app import audit
from app.errors import CodedError
from app.extensions import db
from app.formatting import plural
from app.models import Account, User
from app.models.user import ACTIVE, SOURCE_CSV, SOURCE_SCIM
from app.roles import CUSTOMER_ROLES, STAFF_ROLES, apps_for_roles
from app.services.users import (
    EMAIL_UNAVAILABLE,
    EMAIL_UNAVAILABLE_MESSAGE,
    NAME_MAX_LENGTH,
    UserError,
    check_email,
    check_name,
    deactivate_user,
)
from app.sessions import revoke_app_sessions_for_users
from app.timeutil import utcnow

log = logging.getLogger(__name__)

#: The columns, in the order the documentation shows them (any order is accepted).
HEADER = ("email", "name", "roles")
#: Rows looked up and written together.
CHUNK_ROWS = 1000
#: Larger files are refused: split them (100,000 rows import in a few seconds).
MAX_ROWS = 200_000
#: A physical line longer than this is not a user row.
MAX_LINE_BYTES = 64 * 1024
#: Bytes read at a time (after the first line).
_BLOCK_BYTES = 256 * 1024
#: Reading stops after this many refused rows: the file needs fixing first.
MAX_REFUSED = 1000
#: Rows kept per outcome for the report (the counts are always complete).
MAX_LISTED = 500
#: Distinct role names a row may carry: one of each customer role.
MAX_ROLES_PER_ROW = len(CUSTOMER_ROLES)

#: Byte order marks of encodings that are not UTF-8, and the name to tell the admin.
_FOREIGN_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)

CREATE, UPDATE, UNCHANGED, DEACTIVATE = "create", "update", "unchanged", "deactivate"

T = TypeVar("T")


@dataclass(frozen=True)
class Issue:
    """Why a row (or the whole file) is refused: a stable code, a line number, a sentence."""

    line: int
    code: str
    message: str
    email: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "code": self.code, "message": self.message, "email": self.email}


@dataclass(frozen=True)
class RowChange:
    """What a valid row does (or would do) to its user."""

    line: int
    email: str
    name: str
    roles: tuple[str, ...]
    #: The user's name and roles before, for updates.
    before: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"line": self.line, "email": self.email, "name": self.name, "roles": list(self.roles)}
        if self.before is not None:
            data["before"] = self.before
        return data


@dataclass
class ImportReport:
    """The outcome of an import or a dry run: complete counts, bounded samples, every refusal reason."""

    account_slug: str
    dry_run: bool
    deactivate_missing: bool
    rows: int = 0
    counts: dict[str, int] = field(default_factory=lambda: {CREATE: 0, UPDATE: 0, UNCHANGED: 0, DEACTIVATE: 0})
    samples: dict[str, list[RowChange]] = field(
        default_factory=lambda: {CREATE: [], UPDATE: [], UNCHANGED: [], DEACTIVATE: []}
    )
    #: Refused rows, in file order (at most ``MAX_REFUSED``).
    issues: list[Issue] = field(default_factory=list)
    #: A problem with the file as a whole (header, encoding, size); nothing was read after it.
    file_error: Issue | None = None
    #: SHA-256 of the bytes read: the web page applies only the file it previewed.
    sha256: str = ""
    #: True once the changes are in the caller's transaction, ready to commit.
    applied: bool = False

    @property
    def refused(self) -> int:
        return len(self.issues)

    @property
    def ok(self) -> bool:
        """No refused row and no file error: the import can be (or was) applied."""
        return self.file_error is None and not self.issues

    @property
    def stopped_early(self) -> bool:
        return self.refused >= MAX_REFUSED

    def count(self, outcome: str) -> int:
        return self.counts[outcome]

    def note(self, outcome: str, change: Callable[[], RowChange]) -> None:
        """Count a row; keep it (built by ``change`` only then) while the sample has room."""
        self.counts[outcome] += 1
        if len(self.samples[outcome]) < MAX_LISTED:
            self.samples[outcome].append(change())

    def note_many(self, outcome: str, rows: list[T], change: Callable[[T], RowChange]) -> None:
        """``note`` for a chunk's rows at once: one addition, and ``change`` only for those listed."""
        self.counts[outcome] += len(rows)
        sample = self.samples[outcome]
        if len(sample) < MAX_LISTED:
            sample.extend(change(row) for row in rows[: MAX_LISTED - len(sample)])

    def as_dict(self) -> dict[str, Any]:
        return {
            "account": self.account_slug,
            "dry_run": self.dry_run,
            "applied": self.applied,
            "ok": self.ok,
            "rows": self.rows,
            "created": self.counts[CREATE],
            "updated": self.counts[UPDATE],
            "unchanged": self.counts[UNCHANGED],
            "deactivated": self.counts[DEACTIVATE],
            "refused": self.refused,
            "deactivate_missing": self.deactivate_missing,
            "file_error": self.file_error.as_dict() if self.file_error else None,
            "issues": [issue.as_dict() for issue in self.issues],
            "stopped_early": self.stopped_early,
            "samples": {key: [row.as_dict() for row in rows] for key, rows in self.samples.items()},
            "sha256": self.sha256,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImportReport:
        """The report ``as_dict`` gave, back (an import job keeps its preview as JSON between requests)."""
        report = cls(data["account"], dry_run=data["dry_run"], deactivate_missing=data["deactivate_missing"])
        report.rows = data["rows"]
        report.counts = {
            CREATE: data["created"],
            UPDATE: data["updated"],
            UNCHANGED: data["unchanged"],
            DEACTIVATE: data["deactivated"],
        }
        report.samples = {
            key: [
                RowChange(row["line"], row["email"], row["name"], tuple(row["roles"]), row.get("before"))
                for row in rows
            ]
            for key, rows in data["samples"].items()
        }
        report.issues = [Issue(**issue) for issue in data["issues"]]
        report.file_error = Issue(**data["file_error"]) if data["file_error"] else None
        report.sha256 = data["sha256"]
        report.applied = data["applied"]
        return report


class ImportFileError(CodedError):
    """The file as a whole cannot be read; the issue says where and why."""

    def __init__(self, line: int, code: str, message: str) -> None:
        super().__init__(code, message)
        self.issue = Issue(line, code, message)


class _Lines:
    """The decoded physical lines of a binary stream, with their count, bytes and SHA-256.

    Lines that are not valid UTF-8 are decoded with replacement characters and remembered, so
    that each such row is refused with its own line number (a file saved half in Latin-1 shows
    every bad line at once).
    """

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.line = 0
        self.bytes_read = 0
        self.digest = hashlib.sha256()
        #: Line numbers (not yet consumed by a row) that were not valid UTF-8, with the bad byte.
        self.bad_lines: dict[int, str] = {}

    def __iter__(self) -> Iterator[str]:
        # The first line alone (it may start with a byte order mark), then whole blocks: one
        # read, one digest update and, in a clean file, one decode per block instead of per line.
        raw = self.stream.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        yield self._decode_line(self._count_line(raw))
        pending = b""
        while True:
            block = self.stream.read(_BLOCK_BYTES)
            if not block:
                if pending:  # the last line, without a line break
                    yield self._decode_line(self._count_line(pending))
                return
            data = pending + block if pending else block
            end = data.rfind(b"\n") + 1
            if end == 0:  # no line break yet: a line longer than a block, or the end of the file
                if len(data) > MAX_LINE_BYTES:
                    self._count_line(data)  # raises CSV_LINE_TOO_LONG
                pending = data
                continue
            whole, pending = data[:end], data[end:]
            raws = whole.split(b"\n")
            raws.pop()  # after the last line break
            try:
                if max(map(len, raws)) >= MAX_LINE_BYTES:
                    raise ValueError("a line too long: line by line, to say which")
                text = whole.decode("utf-8")
            except (ValueError, UnicodeDecodeError):  # (UnicodeDecodeError is a ValueError)
                for one in raws:
                    yield self._decode_line(self._count_line(one + b"\n"))
                continue
            self.bytes_read += end
            self.digest.update(whole)
            lines = text.split("\n")
            lines.pop()
            for line in lines:
                self.line += 1
                yield line + "\n"

    def _count_line(self, raw: bytes) -> bytes:
        """Count one physical line (refused when too long), and add it to the size and digest."""
        self.line += 1
        if len(raw) > MAX_LINE_BYTES:
            raise ImportFileError(
                self.line,
                "CSV_LINE_TOO_LONG",
                f"Line {self.line} is longer than {MAX_LINE_BYTES // 1024} KB, so this is not a CSV file of users. Check that you chose the right file.",
            )
        self.bytes_read += len(raw)
        self.digest.update(raw)
        return raw

    def _decode_line(self, raw: bytes) -> str:
        """One counted line as text; a line that is not UTF-8 is remembered with its bad byte."""
        if self.line == 1:
            raw = self._strip_bom(raw)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            self.bad_lines[self.line] = f"0x{raw[exc.start]:02x}"
            return raw.decode("utf-8", errors="replace")

    def _strip_bom(self, raw: bytes) -> bytes:
        for bom, name in _FOREIGN_BOMS:
            if raw.startswith(bom):
                raise ImportFileError(
                    1,
                    "CSV_ENCODING",
                    f'The file is encoded as {name}. Save it as UTF-8 (in Excel: "CSV UTF-8") and import it again.',
                )
        return raw.removeprefix(codecs.BOM_UTF8)

    def take_bad_line(self, first: int, last: int) -> tuple[int, str] | None:
        """The first non-UTF-8 line among ``first..last`` (one CSV row), forgetting those lines."""
        if not self.bad_lines:
            return None
        found = None
        for number in range(first, last + 1):
            byte = self.bad_lines.pop(number, None)
            if byte is not None and found is None:
                found = (number, byte)
        return found


class _Candidate(NamedTuple):
    """A row whose own values are valid; the database decides what it does."""

    line: int
    email: str
    name: str
    roles: tuple[str, ...]


def _parse_header(row: list[str] | None) -> dict[str, int]:
    """Map each column to its position, or raise CSV_HEADER / CSV_EMPTY."""
    if row is None:
        raise ImportFileError(0, "CSV_EMPTY", "The file is empty. The first line must be the header: email,name,roles.")
    names = [cell.strip().lower() for cell in row]
    expected = ", ".join(HEADER)
    if any("@" in name for name in names):
        raise ImportFileError(
            1, "CSV_HEADER", f"Line 1 looks like a user, not a header. Add the header line first: {','.join(HEADER)}."
        )
    missing = [name for name in HEADER if name not in names]
    unknown = sorted({name for name in names if name not in HEADER})
    duplicated = sorted({name for name in names if name in HEADER and names.count(name) > 1})
    problems = []
    if missing:
        problems.append(f"{plural(len(missing), 'missing column')}: {', '.join(missing)}")
    if unknown:
        problems.append(f"{plural(len(unknown), 'unknown column')}: {', '.join(unknown) or '(empty)'}")
    if duplicated:
        problems.append(f"{plural(len(duplicated), 'repeated column')}: {', '.join(duplicated)}")
    if problems:
        raise ImportFileError(1, "CSV_HEADER", f"The header must name the columns {expected}: {'; '.join(problems)}.")
    return {name: names.index(name) for name in HEADER}


@functools.lru_cache(maxsize=256)
def _parse_roles(text: str) -> tuple[tuple[str, ...], Issue | None]:
    """Split ``admin;agent``; refuse staff roles, unknown roles, too many, or none.

    Cached: a file repeats the same few role strings on every line.
    """
    names = sorted({part.strip().lower() for part in text.replace(",", ";").split(";") if part.strip()})
    if not names:
        return (), Issue(
            0, "ROLE_MISSING", f"No role. Give at least one of {', '.join(CUSTOMER_ROLES)}, separated by ';'."
        )
    if len(names) > MAX_ROLES_PER_ROW:
        return (), Issue(
            0,
            "TOO_MANY_ROLES",
            f"{len(names)} roles; a user has at most {MAX_ROLES_PER_ROW} ({', '.join(CUSTOMER_ROLES)}), separated by ';'.",
        )
    staff = [name for name in names if name in STAFF_ROLES]
    if staff:
        return (), Issue(
            0,
            "ROLE_STAFF",
            f"'{staff[0]}' is a staff role, which an import cannot give. Use {' or '.join(CUSTOMER_ROLES)}.",
        )
    unknown = [name for name in names if name not in CUSTOMER_ROLES]
    if unknown:
        return (), Issue(
            0, "ROLE_UNKNOWN", f"Unknown role '{unknown[0]}': use {', '.join(CUSTOMER_ROLES)}, separated by ';'."
        )
    return tuple(names), None


def _email_in(emails: list[str]) -> ColumnElement[bool]:
    """``users.email IN (...)``. On PostgreSQL, ``= ANY`` of one array parameter: psycopg binds
    it three times faster than a thousand separate parameters."""
    if db.session.get_bind().dialect.name == "postgresql":
        return User.email == any_(bindparam("emails", emails, type_=postgresql.ARRAY(String)))
    # One expanding parameter: ``in_(list)`` would coerce each of a chunk's emails to a literal.
    return User.email.in_(bindparam("emails", emails, expanding=True))


def _sql_literal(value: Any, type_: TypeEngine[Any], dialect: Dialect) -> ColumnElement[Any]:
    """``value`` as SQL text in ``dialect`` (as SQLAlchemy renders literal binds): a value that
    executemany does not bind and convert again on every row."""
    text = literal(value, type_).compile(dialect=dialect, compile_kwargs={"literal_binds": True}).string
    return literal_column(text, type_)


def _name_problem(raw: str) -> str:
    """Why ``check_name`` refused a name, and what to do, in the import's words."""
    name = raw.strip()
    if len(name) > NAME_MAX_LENGTH:
        return f"the name has {len(name):,} characters; shorten it to {NAME_MAX_LENGTH} at most."
    return "the name contains invisible control characters (often pasted along with it). Type the name again."


def _same(change: RowChange) -> RowChange:
    """A change already built: ``ImportReport.note`` takes a maker, so that rows not listed cost nothing."""
    return change


class _Importer:
    """One pass over one file for one account (see the module docstring)."""

    def __init__(
        self,
        account: Account,
        *,
        apply: bool,
        deactivate_missing: bool,
        actor: str | None,
        actor_email: str | None,
        expected_sha256: str | None,
        progress: Callable[[int, int], None] | None,
        include_scim: bool = False,
    ) -> None:
        self.account = account
        self.include_scim = include_scim
        self.expected_sha256 = expected_sha256
        self.apply = apply
        self.actor = actor
        self.actor_email = actor_email
        self.progress = progress
        self.report = ImportReport(account.slug, dry_run=not apply, deactivate_missing=deactivate_missing)
        #: Every valid email of the file and its first line: duplicates, and users missing from it.
        self.seen: dict[str, int] = {}
        self.chunk: list[_Candidate] = []

    @property
    def writing(self) -> bool:
        """Write while every row so far is good; after a refusal, only check the rest."""
        return self.apply and self.report.ok

    def refuse(self, issue: Issue) -> None:
        self.report.issues.append(issue)

    def run(self, stream: IO[bytes]) -> ImportReport:
        lines = _Lines(stream)
        try:
            self._read(lines)
            if self.report.deactivate_missing and not self.report.stopped_early:
                self._deactivate_missing()
        except ImportFileError as exc:
            self.report.file_error = exc.issue
        except csv.Error as exc:
            # The csv module's words ("unexpected end of data") help nobody: say what to fix.
            log.info("import for %s: line %d is not valid CSV: %s", self.account.slug, lines.line, exc)
            self.report.file_error = Issue(
                lines.line,
                "CSV_MALFORMED",
                f"Line {lines.line} could not be read: a double quote is not closed, or stands inside a value. "
                "Put a value that contains a comma or a quote in double quotes, and double each quote inside it.",
            )
        except IntegrityError:
            log.warning("import for %s collided with a concurrent change", self.account.slug)
            self.report.file_error = Issue(
                0, "IMPORT_CONFLICT", "Someone changed these users at the same time. Nothing was imported; try again."
            )
        self.report.sha256 = lines.digest.hexdigest()
        if self.expected_sha256 and self.report.file_error is None and self.expected_sha256 != self.report.sha256:
            self.report.file_error = Issue(
                0,
                "IMPORT_FILE_CHANGED",
                "This is not the file you previewed. Nothing was imported: preview this file first, then apply it.",
            )
        self.report.applied = self.apply and self.report.ok
        if self.report.applied:
            self._record_summary()
        return self.report

    def _read(self, lines: _Lines) -> None:
        reader = csv.reader(lines, strict=True)
        header = next(reader, None)
        bad = lines.take_bad_line(1, lines.line)
        if bad is not None:
            raise ImportFileError(
                bad[0],
                "CSV_ENCODING",
                f"The header is not UTF-8 (byte {bad[1]}). Save the file as UTF-8 and import it again.",
            )
        columns = _parse_header(header)
        first_line = lines.line + 1
        report = self.report
        for row in reader:
            line, first_line = first_line, lines.line + 1
            # The hot loop, once per row: cheap tests first (no bad line in a clean file, one
            # strip of the joined cells for a blank row).
            bad = lines.take_bad_line(line, lines.line) if lines.bad_lines else None
            if bad is None and not "".join(row).strip():
                continue
            report.rows += 1
            if report.rows > MAX_ROWS:
                raise ImportFileError(
                    line,
                    "CSV_TOO_MANY_ROWS",
                    f"The file has more than {MAX_ROWS:,} users; split it into smaller files.",
                )
            if bad is not None:
                self.refuse(
                    Issue(
                        bad[0],
                        "ENCODING_INVALID",
                        f"Line {bad[0]} is not UTF-8 (byte {bad[1]}): the file mixes encodings. Save it as UTF-8 and import it again.",
                    )
                )
            else:
                self._check_row(line, row, columns)
            if report.issues and report.stopped_early:
                return
            if len(self.chunk) >= CHUNK_ROWS:
                self._flush_chunk()
                if self.progress:
                    self.progress(lines.bytes_read, report.rows)
        self._flush_chunk()
        if self.progress:
            self.progress(lines.bytes_read, report.rows)

    def _check_row(self, line: int, row: list[str], columns: dict[str, int]) -> None:
        if len(row) != len(columns):
            code = "COLUMN_MISSING" if len(row) < len(columns) else "COLUMN_EXTRA"
            hint = (
                "Put a name that contains a comma in double quotes."
                if code == "COLUMN_EXTRA"
                else "Add the missing values; an empty name is two commas in a row (ana@example.com,,agent)."
            )
            values = "value" if len(row) == 1 else "values"
            self.refuse(
                Issue(
                    line,
                    code,
                    f"Line {line} has {len(row)} {values}; each line needs {len(columns)} ({','.join(HEADER)}). {hint}",
                )
            )
            return
        raw_email = row[columns["email"]]
        if not raw_email.strip():
            self.refuse(Issue(line, "EMAIL_MISSING", f"Line {line} has no email address. Add it, or delete the line."))
            return
        try:
            email = check_email(raw_email)
        except UserError:
            # Our words, not email-validator's ("The part after the @-sign is not valid ...").
            shown = raw_email.strip()[:320]
            self.refuse(
                Issue(
                    line,
                    "EMAIL_INVALID",
                    f"Line {line}: '{shown[:80]}' is not an email address. "
                    "Correct it (one @, then a domain such as example.com), or delete the line.",
                    shown,
                )
            )
            return
        first = self.seen.get(email)
        if first is not None:
            self.refuse(
                Issue(
                    line,
                    "DUPLICATE_IN_FILE",
                    f"Line {line}: {email} is already on line {first}. Keep one of the two lines.",
                    email,
                )
            )
            return
        self.seen[email] = line
        try:
            name = check_name(row[columns["name"]])
        except UserError:
            self.refuse(Issue(line, "NAME_INVALID", f"Line {line}: {_name_problem(row[columns['name']])}", email))
            return
        roles, problem = _parse_roles(row[columns["roles"]])
        if problem is not None:
            self.refuse(Issue(line, problem.code, f"Line {line}: {problem.message}", email))
            return
        if email == self.actor_email and "admin" not in roles:
            self.refuse(
                Issue(
                    line,
                    "SELF_LOCKOUT",
                    f"Line {line}: this is your own user, and without the admin role you would lose access. Keep admin in your roles.",
                    email,
                )
            )
            return
        self.chunk.append(_Candidate(line, email, name, roles))

    def _flush_chunk(self) -> None:
        """Decide what each row of the chunk does, and write it while nothing has been refused."""
        chunk, self.chunk = self.chunk, []
        if not chunk:
            return
        existing = {
            row.email: row
            for row in db.session.execute(
                select(User.id, User.email, User.account_id, User.name, User.roles, User.source).where(
                    _email_in([candidate.email for candidate in chunk])
                )
            )
        }
        creates: list[_Candidate] = []
        updates: list[tuple[int, RowChange]] = []
        for candidate in chunk:
            user = existing.get(candidate.email)
            if user is None:
                creates.append(candidate)  # counted (and sampled) together below
                continue
            if user.account_id != self.account.id:
                # The same words as for any unusable email: nothing about other customers.
                self.refuse(
                    Issue(
                        candidate.line,
                        EMAIL_UNAVAILABLE,
                        f"Line {candidate.line}: {EMAIL_UNAVAILABLE_MESSAGE}. Use another address, or delete the line.",
                        candidate.email,
                    )
                )
                continue
            if user.source == SOURCE_SCIM and not self.include_scim:
                self.report.note(
                    UNCHANGED,
                    partial(RowChange, candidate.line, candidate.email, user.name, tuple(user.roles.split(","))),
                )
                continue
            name = candidate.name or user.name  # an empty name keeps the one the user has
            staff = tuple(role for role in user.roles.split(",") if role in STAFF_ROLES)
            roles = tuple(sorted(set(candidate.roles) | set(staff)))
            if name == user.name and ",".join(roles) == user.roles:
                self.report.note(UNCHANGED, partial(RowChange, candidate.line, candidate.email, name, roles))
                continue
            before = {"name": user.name, "roles": [role for role in user.roles.split(",") if role]}
            change = RowChange(candidate.line, candidate.email, name, roles, before)
            updates.append((user.id, change))
            self.report.note(UPDATE, partial(_same, change))
        self.report.note_many(CREATE, creates, lambda row: RowChange(row.line, row.email, row.name, row.roles))
        if self.writing:
            self._write(creates, updates)

    def _write(self, creates: list[_Candidate], updates: list[tuple[int, RowChange]]) -> None:
        """One executemany INSERT and one executemany UPDATE (Core: no ORM object per row)."""
        now = utcnow()
        users = cast(Table, User.__table__)
        if creates:
            # What every new user shares is written into the statement once, as SQL literals,
            # instead of being bound and converted on each row: on SQLite that conversion (a
            # datetime to text, twice a row) costs as much as the insert itself. Only email,
            # name and roles are bound per row. (The literals are ours: an id, a constant, now.)
            dialect = db.session.get_bind().dialect
            shared = {
                "account_id": self.account.id,
                "status": ACTIVE,
                "source": SOURCE_CSV,
                "created_at": now,
                "updated_at": now,
            }
            db.session.execute(
                users.insert().values(
                    {
                        **{name: _sql_literal(value, users.c[name].type, dialect) for name, value in shared.items()},
                        "email": bindparam("email"),
                        "name": bindparam("name"),
                        "roles": bindparam("roles"),
                    }
                ),
                [{"email": row.email, "name": row.name, "roles": ",".join(row.roles)} for row in creates],
            )
        if updates:
            db.session.execute(
                users.update()
                .where(users.c.id == bindparam("user_id"))
                .values(name=bindparam("new_name"), roles=bindparam("new_roles"), updated_at=now),
                [
                    {"user_id": user_id, "new_name": change.name, "new_roles": ",".join(change.roles)}
                    for user_id, change in updates
                ],
            )
        # A user whose new roles open fewer apps loses those apps' sessions (as on the admin page).
        lost_apps = {
            user_id: apps_for_roles(change.before["roles"]) - apps_for_roles(change.roles)
            for user_id, change in updates
            if change.before is not None
        }
        revoke_app_sessions_for_users(lost_apps, "role_removed", account_id=self.account.id, actor=self.actor)
        audit.record_many(
            "user.update",
            (
                (
                    change.email,
                    {
                        "before": change.before,
                        "after": {"name": change.name, "roles": list(change.roles)},
                        "source": "csv_import",
                    },
                )
                for _user_id, change in updates
            ),
            account_id=self.account.id,
            actor=self.actor,
        )

    def _deactivate_missing(self) -> None:
        """The account's active users whose email is not in the file: listed, and deactivated on apply."""
        last_id = 0
        while True:
            batch = db.session.execute(
                select(User.id, User.email, User.name, User.roles)
                .where(
                    User.account_id == self.account.id,
                    User.status == ACTIVE,
                    User.id > last_id,
                    true() if self.include_scim else User.source != SOURCE_SCIM,
                )
                .order_by(User.id)
                .limit(CHUNK_ROWS)
            ).all()
            if not batch:
                return
            last_id = batch[-1].id
            missing = [row for row in batch if row.email not in self.seen]
            if any(row.email == self.actor_email for row in missing):
                raise ImportFileError(
                    0,
                    "IMPORT_DEACTIVATES_YOU",
                    "Your own user is not in the file, so this import would deactivate you. Add your row, or import without deactivating missing users.",
                )
            for row in missing:
                self.report.note(
                    DEACTIVATE,
                    partial(RowChange, 0, row.email, row.name, tuple(r for r in row.roles.split(",") if r)),
                )
            if self.writing and missing:
                for user in db.session.scalars(select(User).where(User.id.in_([row.id for row in missing]))):
                    deactivate_user(user, actor=self.actor, reason="missing_from_import")

    def _record_summary(self) -> None:
        counts = self.report.as_dict()
        audit.record(
            "user.import",
            account_id=self.account.id,
            actor=self.actor,
            details={
                key: counts[key]
                for key in ("rows", "created", "updated", "unchanged", "deactivated", "deactivate_missing", "sha256")
            },
        )


def import_users(
    account: Account,
    stream: IO[bytes],
    *,
    apply: bool,
    deactivate_missing: bool = False,
    actor: str | None = None,
    actor_email: str | None = None,
    expected_sha256: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    include_scim: bool = False,
) -> ImportReport:
    """Check (and with ``apply``, write) a CSV of users for ``account``.

    The caller commits when ``report.applied``, and otherwise rolls back: rows written before a
    refusal further down the file must not stay. ``actor_email`` is the admin importing from the
    portal, who cannot import themselves out of their own access. With ``expected_sha256`` the
    file must be the one a dry run previewed. ``progress`` is called with the number of bytes read
    and of rows read after each chunk (it may raise to stop the import). Users the IdP keeps over SCIM are left alone (their rows count as unchanged,
    and they are never "missing") unless ``include_scim``: the IdP would undo the change anyway.
    """
    return _Importer(
        account,
        apply=apply,
        deactivate_missing=deactivate_missing,
        actor=actor,
        actor_email=actor_email,
        expected_sha256=expected_sha256,
        progress=progress,
        include_scim=include_scim,
    ).run(stream)


def record_refused_import(account: Account, report: ImportReport, *, actor: str | None = None) -> None:
    """Audit an import that was refused (after the caller rolled its writes back)."""
    problem = report.file_error or (report.issues[0] if report.issues else None)
    audit.record(
        "user.import",
        outcome="failure",
        error_code=problem.code if problem else "IMPORT_REFUSED",
        account_id=account.id,
        actor=actor,
        details={
            "rows": report.rows,
            "refused": report.refused,
            "first_problem": problem.as_dict() if problem else None,
        },
    )
