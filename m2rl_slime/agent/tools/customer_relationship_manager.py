"""CRM toolkit: search, update, add and delete customers (NeMo-Gym `CustomerRelationshipManagerTool`)."""

from __future__ import annotations

from typing import Any

from ..state import WorkplaceState
from ._common import Param, ToolError, ToolSpec, icontains, next_id, paginate

STATUSES = ("Qualified", "Won", "Lost", "Lead", "Proposal")
PRODUCTS = ("Software", "Hardware", "Services", "Consulting", "Training")
_TEXT_FILTERS = ("customer_name", "customer_email", "product_interest", "status", "assigned_to_email")
# bound argument -> (column, True for a lower bound)
_DATE_FILTERS = {
    "last_contact_date_min": ("last_contact_date", True),
    "last_contact_date_max": ("last_contact_date", False),
    "follow_up_by_min": ("follow_up_by", True),
    "follow_up_by_max": ("follow_up_by", False),
}
_UPDATABLE = (
    "customer_name, assigned_to_email, customer_email, customer_phone, last_contact_date, product_interest, "
    "status, notes, follow_up_by"
)


def _within(value: Any, bound: Any, lower: bool) -> bool:
    """String comparison against a bound, as pandas compares the date columns; missing cells never match."""
    if not isinstance(value, str):
        return False
    try:
        return value >= bound if lower else value <= bound
    except TypeError:
        raise ToolError("date bounds must be strings (YYYY-MM-DD)") from None


def search_customers(state: WorkplaceState, page: int = 1, page_size: int = 5, **filters: Any) -> Any:
    """Customers matching every given filter (text filters: regex, case-insensitive; dates: string bounds)."""
    unknown = sorted(set(filters) - set(_TEXT_FILTERS) - set(_DATE_FILTERS))
    if unknown:
        raise ToolError(f"unexpected argument(s) {', '.join(unknown)}")
    if not any(filters.values()):
        return "No search parameters provided. Please provide at least one parameter."
    table = state["crm"]
    text = [(table.col(c), filters[c]) for c in _TEXT_FILTERS if filters.get(c)]
    dates = [(table.col(col), filters[arg], lower) for arg, (col, lower) in _DATE_FILTERS.items() if filters.get(arg)]
    customers = [
        table.record(row)
        for row in table.rows()
        if all(icontains(pattern, row[idx]) for idx, pattern in text)
        and all(_within(row[idx], bound, lower) for idx, bound, lower in dates)
    ]
    if not customers:
        return "No customers found."
    return paginate(customers, page, page_size, "customers", "total_customers")


def update_customer(
    state: WorkplaceState, customer_id: str | None = None, field: str | None = None, new_value: str | None = None
) -> Any:
    if not customer_id or not field or not new_value:
        return "Customer ID, field, or new value not provided."
    if field == "status" and new_value not in STATUSES:
        return f"Status not valid. Please choose from: {', '.join(repr(s) for s in STATUSES)}"
    if field == "product_interest" and new_value not in PRODUCTS:
        return f"Product interest not valid. Please choose from: {', '.join(repr(p) for p in PRODUCTS)}"
    if field in ("customer_email", "assigned_to_email"):
        new_value = new_value.lower()
    table = state["crm"]
    keys = table.keys_where("customer_id", customer_id)
    if not keys:
        return "Customer not found."
    if field not in table.columns:
        return f"Field not valid. Please choose from: {', '.join(repr(f) for f in _UPDATABLE.split(', '))}"
    for key in keys:
        table.set_value(key, field, new_value)
    return "Customer updated successfully."


def add_customer(
    state: WorkplaceState,
    customer_name: str | None = None,
    assigned_to_email: str | None = None,
    status: str | None = None,
    customer_email: str | None = None,
    customer_phone: str | None = None,
    last_contact_date: str | None = None,
    product_interest: str | None = None,
    notes: str = "",
    follow_up_by: str | None = None,
) -> Any:
    if not all([customer_name, assigned_to_email, status]):
        return "Please provide all required fields: customer_name, assigned_to_email, status."
    table = state["crm"]
    customer_id = next_id(table.values("customer_id"), width=8)
    table.append(
        {
            "customer_id": customer_id,
            "customer_name": customer_name,
            "customer_email": customer_email.lower() if customer_email else customer_email,
            "customer_phone": customer_phone,
            "last_contact_date": last_contact_date,
            "product_interest": product_interest,
            "status": status,
            "assigned_to_email": assigned_to_email.lower(),
            "notes": notes,
            "follow_up_by": follow_up_by,
        }
    )
    return customer_id


def delete_customer(state: WorkplaceState, customer_id: str | None = None) -> Any:
    if not customer_id:
        return "Customer ID not provided."
    table = state["crm"]
    keys = table.keys_where("customer_id", customer_id)
    if not keys:
        return "Customer not found."
    for key in keys:
        table.delete(key)
    return "Customer deleted successfully."


_ID = Param("customer_id", required=True, description="Id of the customer")
_STATUS_HELP = f"Pipeline stage: {', '.join(STATUSES)}"
_PRODUCT_HELP = f"Product the customer is interested in: {', '.join(PRODUCTS)}"
SPECS = (
    ToolSpec(
        "customer_relationship_manager_search_customers",
        "read",
        "Search customers; every given filter must match. Paginated.",
        (
            Param("customer_name", description="Text matched against the customer's name"),
            Param("customer_email", description="Text matched against the customer's e-mail address"),
            Param("product_interest", description=_PRODUCT_HELP),
            Param("status", description=_STATUS_HELP),
            Param("assigned_to_email", description="Text matched against the account owner's e-mail address"),
            Param("last_contact_date_min", description="Earliest last contact date (YYYY-MM-DD)"),
            Param("last_contact_date_max", description="Latest last contact date (YYYY-MM-DD)"),
            Param("follow_up_by_min", description="Earliest follow-up date (YYYY-MM-DD)"),
            Param("follow_up_by_max", description="Latest follow-up date (YYYY-MM-DD)"),
            Param("page", "integer", description="Result page to return"),
            Param("page_size", "integer", description="Customers per page"),
        ),
        search_customers,
    ),
    ToolSpec(
        "customer_relationship_manager_update_customer",
        "update",
        "Change one field of the customer with the given id.",
        (
            _ID,
            Param("field", required=True, description=f"Field to change: {_UPDATABLE}"),
            Param("new_value", required=True, description="The new value"),
        ),
        update_customer,
    ),
    ToolSpec(
        "customer_relationship_manager_add_customer",
        "create",
        "Add a customer and return the new id.",
        (
            Param("customer_name", required=True, description="Name of the customer"),
            Param("assigned_to_email", required=True, description="E-mail address of the account owner"),
            Param("status", required=True, description=_STATUS_HELP),
            Param("customer_email", description="The customer's e-mail address"),
            Param("customer_phone", description="The customer's phone number"),
            Param("last_contact_date", description="Date of the last contact (YYYY-MM-DD)"),
            Param("product_interest", description=_PRODUCT_HELP),
            Param("notes", description="Free-text notes"),
            Param("follow_up_by", description="Date of the next follow-up (YYYY-MM-DD)"),
        ),
        add_customer,
    ),
    ToolSpec(
        "customer_relationship_manager_delete_customer",
        "delete",
        "Delete the customer with the given id.",
        (_ID,),
        delete_customer,
    ),
)
