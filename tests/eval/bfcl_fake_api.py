"""A stand-in for bfcl-eval's multi-turn checker module, loaded by the BFCL bridge in the tests (``--api-module``).

It has the two functions the bridge uses, with bfcl-eval's signatures and conventions: instances live in this
module's globals under ``<model>_<entry id>_<class>_instance`` names, call strings get those names prefixed
and go through this module's ``eval`` (which the bridge replaces by its guarded one), results are returned
as strings (dicts as JSON) and a failing call becomes ``"Error during execution: ..."``. One API class,
``TicketAPI``, matches the test data's ``multi_turn_func_doc/ticket_api.json``. Standard library only.
"""

import copy
import json
import re


class TicketAPI:
    def __init__(self):
        self.next_id = 1
        self.tickets = {}

    def _load_scenario(self, scenario, long_context=False):
        self.next_id = scenario.get("next_id", 1)
        self.tickets = copy.deepcopy(scenario.get("tickets", {}))
        if long_context:
            self.tickets["0"] = {"title": "filler " * 50, "priority": 1, "open": False}

    def create_ticket(self, title, priority=1):
        ticket_id = self.next_id
        self.tickets[str(ticket_id)] = {"title": title, "priority": priority, "open": True}
        self.next_id += 1
        return {"id": ticket_id}

    def close_ticket(self, ticket_id):
        ticket = self.tickets.get(str(ticket_id))
        if ticket is None:
            return {"error": f"no ticket {ticket_id}"}
        ticket["open"] = False
        return "closed"

    def list_tickets(self):
        return sorted(int(k) for k, t in self.tickets.items() if t["open"])


CLASSES = {"TicketAPI": TicketAPI}


def execute_multi_turn_func_call(
    func_call_list, initial_config, involved_classes, model_name, test_entry_id, long_context=False, is_evaL_run=False
):
    if is_evaL_run:
        model_name += "_eval"
    names, instances = {}, {}
    for class_name in involved_classes:
        instance_name = re.sub(r"[-./:]", "_", f"{model_name}_{test_entry_id}_{class_name}_instance")
        if instance_name not in globals():
            instance = CLASSES[class_name]()
            instance._load_scenario(copy.deepcopy(initial_config.get(class_name, {})), long_context=long_context)
            globals()[instance_name] = instance
        instances[class_name] = globals()[instance_name]
        for method in dir(instances[class_name]):
            if not method.startswith("_"):
                names[method] = instance_name
    results = []
    for call in func_call_list:
        call = re.sub(r"\b([a-zA-Z_]\w*)\s*(?=\()", lambda m: f"{names[m[1]]}.{m[1]}" if m[1] in names else m[1], call)
        try:
            result = eval(call)
            results.append(result if isinstance(result, str) else json.dumps(result))
        except Exception as exc:
            results.append(f"Error during execution: {exc}")
    return results, instances


def multi_turn_checker(decoded, ground_truth, test_entry, test_category, model_name):
    config, classes, entry_id = test_entry["initial_config"], test_entry["involved_classes"], test_entry["id"]
    for turn, truth in enumerate(ground_truth):
        model = {}
        for step in decoded[turn]:
            _, model = execute_multi_turn_func_call(step, config, classes, model_name, entry_id, is_evaL_run=True)
        _, expected = execute_multi_turn_func_call(
            truth, config, classes, model_name + "_truth", entry_id, is_evaL_run=True
        )
        if not truth:
            continue
        if not decoded[turn]:
            return {
                "valid": False,
                "error_type": "multi_turn:empty_turn_model_response",
                "error_message": f"turn {turn}",
            }
        for name, instance in expected.items():
            if vars(model[name]) != vars(instance):
                return {"valid": False, "error_type": "multi_turn:instance_state_mismatch",
                        "error_message": f"turn {turn}", "details": {"model": vars(model[name])}}  # fmt: skip
    return {"valid": True}
