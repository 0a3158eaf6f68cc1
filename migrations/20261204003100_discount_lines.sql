-- A coupon's discount is printed as a line of its own (SPEC section 10): `Discount (CODE)`,
-- quantity 1 at minus the discount amount.
ALTER TYPE invoice_line_kind ADD VALUE IF NOT EXISTS 'discount';
