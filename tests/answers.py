"""What a registry server's client sees, comparable across servers: the
serialized response or the error (class and message), with the parts stock
rebuilds on every read cleared (README lists both)."""


def without_rebuilt_parts(message):
    """Clears what stock rebuilds in an on demand feature view instead of
    returning what was stored: its UDF, pickled again after unpickling
    (same function, other bytes), and its request sources' timestamps,
    which stock sets to the time of the request."""
    if message.DESCRIPTOR.full_name == "feast.core.OnDemandFeatureView":
        spec = message.spec
        spec.feature_transformation.user_defined_function.ClearField("body")
        spec.user_defined_function.ClearField("body")
        for source in spec.sources.values():
            if source.HasField("request_data_source"):
                source.request_data_source.ClearField("meta")
        return
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if field.is_repeated:
            if field.message_type.GetOptions().map_entry:
                values = value.values() if field.message_type.fields_by_name["value"].message_type else ()
            else:
                values = value
            for item in values:
                without_rebuilt_parts(item)
        else:
            without_rebuilt_parts(value)


def answer(server, rpc, request):
    """Calls server.rpc(request) in process: ("ok", serialized response) or
    ("error", class name, message)."""
    try:
        response = getattr(server, rpc)(request, None)
    except Exception as e:
        return ("error", type(e).__name__, str(e))
    if rpc == "Proto":
        response.version_id = ""  # a new one for every read of the registry
    without_rebuilt_parts(response)
    return ("ok", response.SerializeToString(deterministic=True))
