"""An aiosmtpd handler for test_smtp: refuses any recipient whose address starts with
"nobody" (550 5.1.1), answers 450 4.2.1 for one starting with "busy", takes the others and
throws their mail away. Run with this folder on
PYTHONPATH:  python3 -m aiosmtpd -n -l 127.0.0.1:PORT -c smtp_refuse.Refuse
"""


class Refuse:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("nobody"):
            return "550 5.1.1 no such user"
        if address.startswith("busy"):
            return "450 4.2.1 mailbox busy, try later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        return "250 OK"
