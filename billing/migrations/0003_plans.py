"""The plan catalogue (editable by staff in the admin afterwards). Free is the default."""

from django.db import migrations

PLANS = [
    # code, name, price (cents/month), workspaces, members, rows per month
    ("free", "Free", 0, 5, 25, 1_000_000),
    ("team", "Team", 49_900, 15, 100, 25_000_000),
    ("business", "Business", 199_900, 50, 1_000, 250_000_000),
    ("enterprise", "Enterprise", 0, 1_000, 100_000, 10_000_000_000),
]


def forwards(apps, schema_editor):
    Plan = apps.get_model("billing", "Plan")
    for order, (code, name, price, ws, members, rows) in enumerate(PLANS):
        Plan.objects.update_or_create(
            code=code,
            defaults=dict(
                name=name, monthly_price_cents=price, max_workspaces=ws, max_members=members,
                max_rows_per_month=rows, is_default=(code == "free"), sort_order=order,
            ),
        )


class Migration(migrations.Migration):
    dependencies = [("billing", "0002_initial")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
