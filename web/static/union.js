// The union search tab, live: each library's state and the merged works as the libraries
// answer, from the server's event stream (web/union_live.py). The server renders every
// fragment (escaped by its templates); this script only puts them in place. Without
// EventSource, or when the stream breaks before the end, the page asks again and waits for
// the whole answer (wait=1), as a browser without script does.
(function () {
  "use strict";
  var box = document.getElementById("union-live");
  if (!box || !box.getAttribute("data-live")) {
    return;
  }
  var waitUrl = box.getAttribute("data-wait");
  if (!window.EventSource) {
    window.location.replace(waitUrl);
    return;
  }
  var ended = false;
  var source = new EventSource(box.getAttribute("data-live"));
  function region(id) {
    return function (event) {
      document.getElementById(id).innerHTML = event.data;
    };
  }
  source.addEventListener("libraries", region("union-libraries"));
  source.addEventListener("works", region("union-works"));
  source.addEventListener("done", function () {
    ended = true;
    source.close();
    box.setAttribute("aria-busy", "false");
  });
  source.onerror = function () {
    source.close();
    if (!ended) {
      window.location.replace(waitUrl);
    }
  };
})();
