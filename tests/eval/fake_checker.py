"""A reference checker run by the `command` scorer in the tests: request lines on stdin, result lines out.
An episode passes when a tool answered and the model's last message says Done."""

import json
import sys

for line in sys.stdin:
    request = json.loads(line)
    messages = request["messages"] or []
    used_tool = any(m.get("role") == "tool" for m in messages)
    ok = used_tool and str(messages[-1].get("content") or "").count("Done:") == 1
    verdict = {"score": 1.0 if ok else 0.0, "reason": "ok" if ok else "wrong", "details": {"turns": len(messages)}}
    print(json.dumps(verdict))
