def handler(event, context)  # a syntax error: the init phase fails
    return event
