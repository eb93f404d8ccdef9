"""The public verifier of signed documents (receipts, prescriptions): upload a PDF, get a verdict.

Signing and the check itself live in ``medimeet/core/pdf.py``; this package is the page
(``/documents/verify/``) and the API (``POST /api/v1/documents/verify/``), both rate-limited by
the ``document_verify`` throttle scope.
"""
