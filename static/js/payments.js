// The pay page's gateway clients. Loaded only on /appointments/<id>/pay/ together with the
// gateway's own script (Stripe.js or Razorpay Checkout), which the page's CSP allows there only.
(function () {
  "use strict";

  function showError(form, message) {
    var box = form.querySelector("[data-mm-pay-error]");
    if (box) { box.textContent = message; box.hidden = false; }
  }

  // Stripe: the Payment Element collects the card; Stripe redirects to our return URL, where
  // the server retrieves the PaymentIntent (and the webhook confirms it too).
  var stripeForm = document.querySelector("[data-mm-stripe]");
  if (stripeForm && window.Stripe) {
    var stripe = window.Stripe(stripeForm.dataset.key);
    var elements = stripe.elements({ clientSecret: stripeForm.dataset.secret });
    elements.create("payment").mount("#mm-stripe-element");
    stripeForm.addEventListener("submit", function (event) {
      event.preventDefault();
      var button = stripeForm.querySelector("button[type=submit]");
      button.disabled = true;
      stripe.confirmPayment({ elements: elements, confirmParams: { return_url: stripeForm.dataset.return } }).then(function (result) {
        if (result.error) { showError(stripeForm, result.error.message); button.disabled = false; }
      });
    });
  }

  // Razorpay: Checkout.js returns three signed fields; we post them to the return URL, where the
  // server checks the signature before believing them.
  var razorpayForm = document.querySelector("[data-mm-razorpay]");
  if (razorpayForm && window.Razorpay) {
    razorpayForm.querySelector("[data-mm-razorpay-open]").addEventListener("click", function () {
      var checkout = new window.Razorpay({
        key: razorpayForm.dataset.key,
        order_id: razorpayForm.dataset.order,
        amount: razorpayForm.dataset.amount,
        currency: razorpayForm.dataset.currency,
        name: razorpayForm.dataset.name,
        prefill: { email: razorpayForm.dataset.email },
        handler: function (response) {
          ["razorpay_order_id", "razorpay_payment_id", "razorpay_signature"].forEach(function (name) {
            razorpayForm.querySelector("input[name=" + name + "]").value = response[name];
          });
          razorpayForm.submit();
        }
      });
      checkout.open();
    });
  }
})();
