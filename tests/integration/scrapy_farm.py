"""A small Scrapy spider for it_http_scrapy: crawls farm item pages through scatter's HTTP front
end, which it reaches only through HTTP_PROXY/http_proxy in its environment (Scrapy's
HttpProxyMiddleware reads it; nothing in this file names the proxy). One item per page, no links
followed. Run: python3 -m scrapy runspider scrapy_farm.py -L WARNING -a urls=URLS.txt -O items.jsonl"""
import scrapy


class FarmSpider(scrapy.Spider):
    name = "farm"
    custom_settings = {
        "ROBOTSTXT_OBEY": False,       # the farm's targets have no robots.txt to ask for
        "CONCURRENT_REQUESTS": 32,
        "CONCURRENT_REQUESTS_PER_DOMAIN": 16,
        "DOWNLOAD_DELAY": 0,           # pacing per proxy and host is scatter's job
        "RETRY_ENABLED": False,        # so a failure scatter did not absorb shows up as a missing item
        "DOWNLOAD_TIMEOUT": 30,
        "TELNETCONSOLE_ENABLED": False,  # no extra listener on 127.0.0.1:6023
        "LOG_LEVEL": "WARNING",
        "REQUEST_FINGERPRINTER_IMPLEMENTATION": "2.7",  # silences Scrapy 2.8's deprecation warning
    }

    def __init__(self, urls=None, **kw):
        super().__init__(**kw)
        if not urls:
            raise ValueError("scrapy_farm: -a urls=FILE is required (one URL per line)")
        with open(urls) as f:
            self.start_urls = [u.strip() for u in f if u.strip()]

    def parse(self, response):
        yield {
            "url": response.url,
            "status": response.status,
            "h1": response.css("h1::text").get(),
            "proxy": response.headers.get("X-Scatter-Proxy", b"").decode(),
        }
