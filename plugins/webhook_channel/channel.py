# Outbox channel adapter: each pending message of the `webhook` / `sms` channel is POSTed as JSON.
# The engine signs the body (X-Loom-Signature: sha256=HMAC(secret, timestamp + "." + body)) when
# the `secret` configuration value is set, and sends the message's idempotency key as
# Idempotency-Key so the receiver can drop a redelivery.


def post(url, body, message):
    answer = http.post(url, body, idempotency_key=message["idempotency_key"])
    status = answer["status"]
    if status >= 500:
        # the gateway is down: fail, so the message stays queued for the next tick
        raise RuntimeError("gateway answered " + str(status))
    if status >= 400:
        log("message", message["id"], "refused by the gateway:", status)
        return False
    return True


def deliver_webhook(message):
    body = {"id": message["id"], "channel": message["channel"], "payload": message["payload"],
            "attempt": message["attempt"]}
    return post(config["url"], body, message)


def deliver_sms(message):
    payload = message["payload"]
    to = str(payload.get("to") or "")
    if not re_fullmatch("(\\+?86)?1[3-9][0-9]{9}", to):
        log("message", message["id"], "has no mainland mobile number; not sent")
        return False
    body = {"to": to[-11:], "text": str(payload.get("text") or ""), "sign": payload.get("sign")}
    return post(config.get("sms_url") or config["url"], body, message)
