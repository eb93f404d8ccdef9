-- History for the dashboard benchmark (docs/performance.md → Dashboard), on top of the data set of
-- bench/dataset.py: past appointments become completed (88 %), no-shows (5 %) or cancellations
-- (7 %), creation spread over the two weeks before the start, a payment per appointment (refunded
-- when cancelled), a consultation per completed one, a published review for every third, and
-- doctor searches every quarter of an hour. Run once, on the bench database only.
BEGIN;
UPDATE appointments_appointment SET
  created_at = start - make_interval(days => (id % 14)::int, hours => 2),
  status = CASE WHEN start >= now() THEN status WHEN id % 100 < 5 THEN 'no_show' WHEN id % 100 < 12 THEN 'cancelled' ELSE 'completed' END,
  cancelled_by = CASE WHEN start < now() AND id % 100 BETWEEN 5 AND 11 THEN 'patient' ELSE '' END,
  cancelled_at = CASE WHEN start < now() AND id % 100 BETWEEN 5 AND 11 THEN start - interval '1 day' END;
INSERT INTO payments_payment (created_at, updated_at, public_id, gateway, status, amount_minor, currency, platform_fee_minor, amount_refunded_minor,
  billing_country, gateway_reference, gateway_payment_id, client_secret, payout_account, idempotency_key, save_card, card_brand, card_last4,
  card_fingerprint, failure_code, failure_message, flag_reason, paid_at, appointment_id, doctor_id, patient_id)
SELECT created_at, created_at, gen_random_uuid(), CASE WHEN currency = 'INR' THEN 'razorpay' ELSE 'stripe' END, 'succeeded', price_minor, currency,
  price_minor / 10, CASE WHEN status = 'cancelled' THEN price_minor ELSE 0 END, '', 'bench-' || id, '', '', '', '', false, 'visa', '4242', '', '', '', '',
  created_at + interval '5 minutes', id, doctor_id, patient_id
FROM appointments_appointment;
INSERT INTO payments_refund (created_at, updated_at, public_id, amount_minor, reason, source, status, decision_note, gateway_reference, idempotency_key,
  attempts, failure_message, processed_at, payment_id)
SELECT a.cancelled_at, a.cancelled_at, gen_random_uuid(), p.amount_minor, 'Cancelled in time', 'policy', 'succeeded', '', '', 'refund-' || p.id, 1, '', a.cancelled_at, p.id
FROM payments_payment p JOIN appointments_appointment a ON a.id = p.appointment_id WHERE a.status = 'cancelled';
INSERT INTO consultations_consultation (created_at, updated_at, room, status, started_at, ended_at, appointment_id)
SELECT start, start, md5('room' || id), 'ended', start, "end", id FROM appointments_appointment WHERE status = 'completed';
INSERT INTO reviews_review (created_at, updated_at, public_id, overall, text, status, moderation_reason, screening, published_at, version, helpful_count,
  open_flag_count, reply_text, appointment_id, author_id, doctor_id)
SELECT "end" + interval '3 hours', "end" + interval '3 hours', gen_random_uuid(), 3 + id % 3, 'Clear advice, on time, would book again.', 'published', '', '[]',
  "end" + interval '3 hours', 1, 0, 0, '', id, patient_id, doctor_id
FROM appointments_appointment WHERE status = 'completed' AND id % 3 = 0;
INSERT INTO doctors_searchtally (bucket, count)
SELECT b, 20 + (extract(epoch FROM b)::bigint / 900) % 40 FROM generate_series(date_trunc('hour', now()) - interval '120 days', now(), interval '15 minutes') AS b
ON CONFLICT (bucket) DO NOTHING;
COMMIT;
VACUUM ANALYZE appointments_appointment, payments_payment, payments_refund, consultations_consultation, reviews_review, doctors_searchtally, accounts_user;
