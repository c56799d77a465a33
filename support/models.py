"""No tables: the support console's permissions hang on this unmanaged model (support.<codename>)."""

from django.db import models


class SupportConsole(models.Model):
    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("resend_invitation", "Resend or revoke an invitation"),
            ("clear_signin_lock", "Clear a sign-in lock"),
            ("verify_audit_chain", "Verify an organization's audit chain"),
            ("view_as_admin", "View an organization as its admins see it (read-only)"),
            ("reset_two_factor", "Reset a person's two-factor sign-in"),
            ("recover_ownership", "Recover the ownership of an organization"),
            ("switch_plan", "Switch an organization to a sales-led plan"),
            ("rerun_rollup", "Re-run the usage roll-up for a day range"),
        ]
