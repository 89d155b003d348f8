"""String formats as grammar rules (the text between the quotes).

Each is a practical subset of its RFC, chosen so that every string it admits passes
`jsonschema`'s FormatChecker (which checks with `ipaddress`, `fqdn`, `isoduration`,
`datetime`, `rfc3339-validator`) and is bounded in length, so a sampled string always
ends. None admits a character that JSON would need escaped.
"""

from __future__ import annotations

_DAY28 = '"0" [1-9] | "1" [0-9] | "2" [0-8]'
# Years 1000-9999 (Python's dates start at year 1; four digits keep it simple); the 29th
# of February only in leap years: divisible by 4, and by 400 when by 100.
_DATE = {
    "fmt-date": (
        'fmt-year "-" ( ("0" [13578] | "1" [02]) "-" ( fmt-day28 | "29" | "3" [01] )'
        ' | ("0" [469] | "11") "-" ( fmt-day28 | "29" | "30" ) | "02-" fmt-day28 )'
        ' | fmt-leap-year "-02-29"'
    ),
    "fmt-year": "[1-9] [0-9]{3}",
    "fmt-leap-year": (
        '[1-9] [0-9] ( "0" [48] | [2468] [048] | [13579] [26] )'
        ' | ( [2468] [048] | [13579] [26] ) "00"'
    ),
    "fmt-day28": _DAY28,
}
_TIME = {
    "fmt-time": (
        '( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] ":" [0-5] [0-9] ( "." [0-9]{1,6} )?'
        ' ( "Z" | [+-] ( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] )'
    ),
}
# Labels of letters, digits and inner hyphens, up to 12 characters so that a sampled name
# ends soon; the last label starts with a letter (a top-level domain is never all digits).
_HOST = {
    "fmt-label": "[a-zA-Z0-9] ( [a-zA-Z0-9-]{0,10} [a-zA-Z0-9] )?",
    "fmt-tld": "[a-zA-Z] ( [a-zA-Z0-9-]{0,10} [a-zA-Z0-9] )?",
}
_HEXTET = "[0-9a-fA-F]{1,4}"


def _ipv6() -> str:
    """RFC 4291's text forms without an embedded IPv4 part: eight groups, or k groups,
    "::" and at most 7 - k more ("::" stands for at least one group)."""
    alts = ['fmt-h16 ( ":" fmt-h16 ){7}']
    for before in range(8):
        head = " ".join(["fmt-h16"] + ['":" fmt-h16'] * (before - 1)) if before else ""
        after = 7 - before
        tail = {0: "", 1: " fmt-h16?"}.get(after, f' ( fmt-h16 ( ":" fmt-h16 ){{0,{after - 1}}} )?')
        alts.append(f'{head} "::"{tail}'.strip())
    return " | ".join(alts)


# name -> (top rule, rules, (shortest, longest) length of the text)
FORMATS: dict[str, tuple[str, dict[str, str], tuple[int, int]]] = {
    "date": ("fmt-date", _DATE, (10, 10)),
    "time": ("fmt-time", _TIME, (9, 21)),
    "date-time": (
        "fmt-date-time",
        {"fmt-date-time": 'fmt-date "T" fmt-time', **_DATE, **_TIME},
        (20, 32),
    ),
    "duration": (
        "fmt-duration",
        {
            "fmt-duration": '"P" ( fmt-dur-date fmt-dur-time? | fmt-dur-time | fmt-dur-n "W" )',
            "fmt-dur-date": (
                'fmt-dur-n "D" | fmt-dur-n "M" ( fmt-dur-n "D" )?'
                ' | fmt-dur-n "Y" ( fmt-dur-n "M" ( fmt-dur-n "D" )? )?'
            ),
            "fmt-dur-time": (
                '"T" ( fmt-dur-n "H" ( fmt-dur-n "M" ( fmt-dur-n "S" )? )?'
                ' | fmt-dur-n "M" ( fmt-dur-n "S" )? | fmt-dur-n "S" )'
            ),
            "fmt-dur-n": "[0-9]{1,4}",
        },
        (3, 40),
    ),
    "email": (
        "fmt-email",
        {
            "fmt-email": 'fmt-atom ( "." fmt-atom )? "@" ( fmt-label "." ){1,2} fmt-tld',
            "fmt-atom": "[a-zA-Z0-9_%+-]{1,16}",
            **_HOST,
        },
        (5, 72),
    ),
    "hostname": (
        "fmt-hostname",
        {"fmt-hostname": '( fmt-label "." ){0,3} fmt-tld', **_HOST},
        (1, 51),
    ),
    "ipv4": (
        "fmt-ipv4",
        {
            "fmt-ipv4": 'fmt-octet "." fmt-octet "." fmt-octet "." fmt-octet',
            "fmt-octet": '[0-9] | [1-9] [0-9] | "1" [0-9] [0-9] | "2" [0-4] [0-9] | "25" [0-5]',
        },
        (7, 15),
    ),
    "ipv6": ("fmt-ipv6", {"fmt-ipv6": _ipv6(), "fmt-h16": _HEXTET}, (2, 39)),
    "uuid": (
        "fmt-uuid",
        {"fmt-uuid": ' "-" '.join(f"[0-9a-fA-F]{{{n}}}" for n in (8, 4, 4, 4, 12))},
        (36, 36),
    ),
}
