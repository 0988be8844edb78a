"""The inbound room: events pushed to driftbot over HTTP (the `generic` and `generic-hmac`
providers of Flux's notification-controller), fed into the pipeline.

May import actions, pipeline, delivery, store and ops; never app, chat, jobs or web.
"""
