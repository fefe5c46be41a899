using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Grpc.Health.V1;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Procurement.Server.Hosting;

namespace Procurement.Server.Tests;

public sealed class TlsTests
{
    [Fact]
    public async Task Server_WithACertificate_ServesGrpcOverTls()
    {
        var folder = Directory.CreateTempSubdirectory("procurement-tls-").FullName;
        try
        {
            var pfx = Path.Combine(folder, "cert.pfx");
            using (var rsa = RSA.Create(2048))
            {
                var request = new CertificateRequest("CN=localhost", rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
                var san = new SubjectAlternativeNameBuilder();
                san.AddIpAddress(System.Net.IPAddress.Loopback);
                request.CertificateExtensions.Add(san.Build());
                using var cert = request.CreateSelfSigned(DateTimeOffset.UnixEpoch, new DateTimeOffset(2100, 1, 1, 0, 0, 0, TimeSpan.Zero));
                await File.WriteAllBytesAsync(pfx, cert.Export(X509ContentType.Pfx, "pw"));
            }

            await using var app = ProcurementHost.Build(
            [
                "--db", Path.Combine(folder, "p.db"), "--urls", "https://127.0.0.1:0",
                $"--Kestrel:Certificates:Default:Path={pfx}", "--Kestrel:Certificates:Default:Password=pw",
                "--Logging:LogLevel:Default=Warning",
            ]);
            await app.StartAsync();
            try
            {
                var address = app.Urls.Single();
                Assert.StartsWith("https://", address);
                using var handler = new HttpClientHandler { ServerCertificateCustomValidationCallback = (_, _, _, _) => true };
                using var channel = GrpcChannel.ForAddress(address, new GrpcChannelOptions { HttpHandler = handler });
                var reply = await new Health.HealthClient(channel).CheckAsync(new HealthCheckRequest());
                Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, reply.Status);
            }
            finally
            {
                await app.StopAsync();
            }
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
