"""Write a valid memstorage-v1 dump of about N rows, streaming, for timing the legacy import.

    .venv/bin/python bench/legacy_generate.py 1000000 /tmp/dump-1m.json [--gzip] [--seed 7]

The mix follows the switch-over estimate (half chat messages, then reviews, projects,
purchases ...). Output is deterministic for a given N and seed. The tests generate their
dumps with `write_dump`; bench/legacy_generate.py is the command line for timing runs.
"""

import argparse
import datetime as dt
import gzip
import json
import random
import sys
import uuid

# Purchase amounts are whole tens: on SQLite the revenue CHECK (gross = fee + net) compares
# floating-point numbers and fails for many cent amounts; PostgreSQL compares exactly.
MIX = {
    "users": 0.025,
    "projects": 0.10,
    "projectFiles": 0.025,
    "marketplaceProjects": 0.05,
    "chatMessages": 0.50,
    "marketplacePurchases": 0.10,
    "marketplaceReviews": 0.10,
    "marketplaceDownloads": 0.025,
    "revenueEvents": 0.075,
}
START = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
WORDS = [
    "agent",
    "parse",
    "invoice",
    "totals",
    "weather",
    "kanban",
    "board",
    "python",
    "script",
    "deploy",
    "model",
    "data",
    "table",
    "chart",
    "export",
    "import",
    "token",
    "search",
    "index",
    "cache",
    "queue",
    "worker",
    "retry",
]


def counts_for(total: int) -> dict[str, int]:
    counts = {name: max(1, int(total * share)) for name, share in MIX.items()}
    counts["users"] = max(3, counts["users"])
    counts["projects"] = max(2, counts["projects"])
    counts["marketplaceProjects"] = min(counts["marketplaceProjects"], counts["projects"])
    # One completed purchase per (buyer, project) and one review per (author, project):
    # keep the pair space large enough.
    pairs = (counts["users"] - 1) * counts["marketplaceProjects"]
    counts["marketplacePurchases"] = min(counts["marketplacePurchases"], pairs)
    counts["marketplaceReviews"] = min(counts["marketplaceReviews"], pairs)
    counts["revenueEvents"] = min(counts["revenueEvents"], counts["marketplacePurchases"])
    return counts


def stamp(rng: random.Random, *, days: int = 600) -> str:
    moment = START + dt.timedelta(seconds=rng.randrange(days * 86400))
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def project_id(index: int) -> str:
    # Every fourth project carries a UUID id (kept as is); the others a legacy string id.
    if index % 4 == 0:
        return str(uuid.UUID(int=index + 1, version=4))
    return f"proj-{index}"


def rows(name: str, count: int, counts: dict[str, int], rng: random.Random):
    users, projects, listed = counts["users"], counts["projects"], counts["marketplaceProjects"]

    def owner_of(p: int) -> int:
        return p % users

    def pair(i: int) -> tuple[int, int]:
        """A distinct (user, listed project) pair for row i, never the project's owner."""
        p = i % listed
        u = (owner_of(p) + 1 + i // listed) % users
        return u, p

    for i in range(count):
        if name == "users":
            yield {
                "id": f"user-{i}",
                "username": f"user{i}",
                "email": f"user{i}@example.com",
                "isAdmin": i == 0,
                "createdAt": stamp(rng, days=30),
            }
        elif name == "projects":
            yield {
                "id": project_id(i),
                "userId": f"user-{owner_of(i)}",
                "name": f"Project {i} {rng.choice(WORDS)}",
                "description": sentence(rng, 12),
                "status": "active" if i % 20 else "archived",
                "createdAt": stamp(rng, days=60),
                "updatedAt": stamp(rng, days=90),
            }
        elif name == "projectFiles":
            yield {
                "projectId": project_id(i % projects),
                "path": f"src/module_{i}.py",
                "content": f"# {sentence(rng, 8)}\ndef run():\n    return {i}\n",
            }
        elif name == "marketplaceProjects":
            yield {
                "id": f"mp-{i}",
                "projectId": project_id(i),
                "price": "0" if i % 5 == 0 else f"{rng.randrange(100, 10000) / 100:.2f}",
                "currency": "EUR" if i % 7 == 0 else "USD",
                "category": "ai-agent" if i % 2 else "cli",
                "tags": [rng.choice(WORDS), f"tag-{i % 50}"],
                "isPublished": i % 20 != 0,
                "publishedAt": stamp(rng, days=120),
            }
        elif name == "chatMessages":
            user = i % users
            yield {
                "id": f"m{i}",
                "userId": f"user-{user}",
                "projectId": project_id(user) if user < projects and i % 3 else None,
                "role": "user" if i % 2 == 0 else "assistant",
                "content": sentence(rng, rng.randrange(5, 40)),
                "metadata": {} if i % 2 == 0 else {"model": "gpt-x", "tokens": i % 997},
                "createdAt": stamp(rng),
            }
        elif name == "marketplacePurchases":
            u, p = pair(i)
            yield {
                "id": f"pur-{i}",
                "userId": f"user-{u}",
                "projectId": project_id(p),
                "amount": f"{(p % 50 + 1) * 10}.00",
                "currency": "USD",
                "status": "completed",
                "createdAt": stamp(rng),
            }
        elif name == "marketplaceReviews":
            u, p = pair(i)
            yield {
                "id": f"rev-{i}",
                "userId": f"user-{u}",
                "projectId": project_id(p),
                "rating": 1 + i % 5,
                "title": sentence(rng, 3),
                "comment": sentence(rng, 15),
                "createdAt": stamp(rng),
            }
        elif name == "marketplaceDownloads":
            u, p = pair(i)
            yield {
                "id": f"dl-{i}",
                "userId": f"user-{u}",
                "projectId": project_id(p),
                "createdAt": stamp(rng),
            }
        elif name == "revenueEvents":
            _, p = pair(i)
            yield {
                "id": f"evt-{i}",
                "type": "purchase",
                "projectId": project_id(p),
                "purchaseId": f"pur-{i}",
                "amount": f"{(p % 50 + 1) * 10}.00",
                "currency": "USD",
                "createdAt": stamp(rng),
            }


MCP_SERVERS = [
    {
        "id": "mcp-github",
        "name": "GitHub",
        "transport": "http",
        "url": "https://mcp.example.com/github",
        "credentialSpec": [{"key": "GITHUB_TOKEN", "label": "Token", "required": True}],
        "isActive": True,
        "createdAt": "2025-01-02T00:00:00Z",
    },
    {
        "id": "mcp-files",
        "name": "Filesystem",
        "transport": "stdio",
        "command": "mcp-server-filesystem",
        "args": ["/srv"],
        "isActive": False,
        "createdAt": "2025-01-03T00:00:00Z",
    },
]


def write_dump(out, total: int, seed: int) -> int:
    counts = counts_for(total)
    rng = random.Random(seed)
    written = 0
    out.write('{"format": "memstorage-v1", "exportedAt": "2026-11-20T09:15:00Z"')
    for name, count in [("mcpServers", len(MCP_SERVERS)), *counts.items()]:
        out.write(f', "{name}": [\n')
        source = MCP_SERVERS if name == "mcpServers" else rows(name, count, counts, rng)
        for index, row in enumerate(source):
            out.write((",\n" if index else "") + json.dumps(row, separators=(",", ":")))
            written += 1
        out.write("\n]")
    out.write("}\n")
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", type=int, help="about how many rows to write")
    parser.add_argument("path", help="output file, or - for standard output")
    parser.add_argument("--gzip", action="store_true", help="gzip the output")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if args.path == "-":
        written = write_dump(sys.stdout, args.rows, args.seed)
    else:
        opener = gzip.open if args.gzip else open
        with opener(args.path, "wt", encoding="utf-8") as out:
            written = write_dump(out, args.rows, args.seed)
    print(f"wrote {written} rows to {args.path}", file=sys.stderr)


if __name__ == "__main__":
    main()
