# %%
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    """A ResNet basic block: two 3x3 convolutions with batch norm and a shortcut."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.short = (
            nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
            if stride != 1 or cin != cout
            else nn.Identity()
        )

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + self.short(x))


class SmallNet(nn.Module):
    """A small ResNet-style image classifier: enough convolutions to keep a GPU busy, no download."""

    def __init__(self, width=64, classes=100):
        super().__init__()
        w = width
        self.stem = nn.Sequential(nn.Conv2d(3, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU())
        self.layers = nn.Sequential(Block(w, w, 1), Block(w, 2 * w, 2), Block(2 * w, 4 * w, 2), Block(4 * w, 8 * w, 2))
        self.head = nn.Linear(8 * w, classes)

    def forward(self, x):
        x = self.layers(self.stem(x))
        return self.head(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def synthetic_batch(batch, image, device, classes=100):
    """Random images and labels: a training step's speed does not depend on what the pixels show."""
    x = torch.randn(batch, 3, image, image, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, classes, (batch,), device=device)
    return x, y


def make_trainer(width, device, amp_dtype=None, compile_model=False):
    """Model, optimizer and a one-step closure: forward, loss, backward, optimizer step."""
    torch.manual_seed(0)
    model = SmallNet(width).to(device).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    # fp16 needs loss scaling (small gradients underflow); bf16 has fp32's range and does not
    scaler = torch.amp.GradScaler(device.type) if amp_dtype == torch.float16 else None
    fwd = torch.compile(model) if compile_model else model

    def step(x, y):
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            loss = F.cross_entropy(fwd(x), y)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            opt.step()
        return loss

    return model, step
