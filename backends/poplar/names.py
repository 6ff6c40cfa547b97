"""C++ identifiers for user names: kernel, parameter and local names are valid in the language
but may be C++ keywords or collide with the names the emitter uses itself."""

from __future__ import annotations

import re

CPP_RESERVED = frozenset(
    """alignas alignof and and_eq asm auto bitand bitor bool break case catch char char8_t
    char16_t char32_t class compl concept const consteval constexpr constinit const_cast continue
    co_await co_return co_yield decltype default delete do double dynamic_cast else enum explicit
    export extern false float for friend goto if inline int long mutable namespace new noexcept
    not not_eq nullptr operator or or_eq private protected public register reinterpret_cast
    requires return short signed sizeof static static_assert static_cast struct switch template
    this thread_local throw true try typedef typeid typename union unsigned using virtual void
    volatile wchar_t while xor xor_eq half main poplar std compute numWorkers size begin end
    Vertex MultiVertex Input Output InOut Vector""".split()
)


class Names:
    """One C++ scope: each user name gets one identifier, never a keyword, never one the
    emitter reserved (``kc_`` prefixes, double underscores), never two names the same one."""

    def __init__(self, taken: set[str] | None = None) -> None:
        self.taken: set[str] = set(taken or ())
        self.given: dict[str, str] = {}

    def __call__(self, name: str) -> str:
        if name in self.given:
            return self.given[name]
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise ValueError(f"not an identifier: {name!r}")
        base = name
        if base in CPP_RESERVED or base.startswith(("kc_", "_")) or "__" in base:
            base = "u_" + base.lstrip("_").replace("__", "_")
        out, k = base, 1
        while out in self.taken or out in self.given.values():
            k += 1
            out = f"{base}_{k}"
        self.taken.add(out)
        self.given[name] = out
        return out

    def derived(self, base: str) -> str:
        """An emitter name made from a user name (``x_stream``): unique, never cached as the
        identifier of a user name, so a user tensor called ``x_stream`` gets another one."""
        out, k = base, 1
        while out in self.taken or out in CPP_RESERVED:
            k += 1
            out = f"{base}_{k}"
        self.taken.add(out)
        return out

    def fresh(self, base: str) -> str:
        """An emitter temporary (``kc_`` prefixed, so never a user name)."""
        k = 1
        while f"kc_{base}{k}" in self.taken:
            k += 1
        self.taken.add(f"kc_{base}{k}")
        return f"kc_{base}{k}"


def class_name(kernel: str, index: int) -> str:
    """A vertex class name: the kernel name in CamelCase and the task's position."""
    camel = "".join(part[:1].upper() + part[1:] for part in kernel.split("_") if part)
    return f"{camel or 'Task'}{index}Vertex"
