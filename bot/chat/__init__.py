"""The chat room: the Slack app (slash command, buttons, App Home), its command parser and
runner, mutes and acks applied to the running pipeline, and the Teams outgoing webhook.

May import actions, pipeline, delivery, store and ops; never app, jobs, inbound or web.
"""
