"""`/api/v1/customers`: create, read, update, search, history."""

from flask import g
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from contact_center.agents.auth import require_role
from contact_center.customers import services
from contact_center.customers.schemas import (
    CustomerCreateSchema,
    CustomerSchema,
    CustomerSearchSchema,
    CustomerUpdateSchema,
    ScreenPopSchema,
)
from contact_center.ivr import control
from contact_center.routing import services as routing
from contact_center.routing.schemas import InteractionSchema

blp = Blueprint("customers", __name__, url_prefix="/api/v1/customers", description="Customers")


@blp.get("")
@require_role("agent")
@blp.arguments(CustomerSearchSchema, location="query")
@blp.response(200, CustomerSchema(many=True))
def list_customers(args: dict):
    """Search customers by name, phone number in any format, or email."""
    customers = services.search_customers(args["q"], args["limit"], args["offset"])
    return [services.customer_summary(c) for c in customers]


@blp.post("")
@require_role("agent")
@blp.arguments(CustomerCreateSchema)
@blp.response(201, CustomerSchema)
def create_customer(data: dict):
    """Create a customer."""
    return services.customer_summary(services.create_customer(data))


@blp.get("/<int:customer_id>")
@require_role("agent")
@blp.response(200, CustomerSchema)
def get_customer(customer_id: int):
    """One customer."""
    return services.customer_summary(services.get_customer(customer_id))


@blp.patch("/<int:customer_id>")
@require_role("agent")
@blp.arguments(CustomerUpdateSchema)
@blp.response(200, CustomerSchema)
def update_customer(data: dict, customer_id: int):
    """Change some of a customer's fields."""
    customer = services.get_customer(customer_id)
    return services.customer_summary(services.update_customer(customer, data))


@blp.get("/<int:customer_id>/history")
@require_role("agent")
@blp.response(200, ScreenPopSchema)
def customer_history(customer_id: int):
    """The screen pop: open tickets, complaints, recent interactions, notes, satisfaction."""
    return services.history(services.get_customer(customer_id))


class CallCustomerSchema(Schema):
    phone = fields.String(
        load_default=None,
        validate=validate.Length(min=1, max=40),
        metadata={"description": "One of the customer's numbers; default: their first"},
    )


@blp.post("/<int:customer_id>/call")
@require_role("agent")
@blp.arguments(CallCustomerSchema)
@blp.response(201, InteractionSchema)
def call_customer(data: dict, customer_id: int):
    """Click-to-call: ring the signed-in agent, then the customer, into one conference."""
    customer = services.get_customer(customer_id)
    return routing.interaction_payload(control.call_customer(g.user, customer, data["phone"]))
